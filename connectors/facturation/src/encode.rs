//! The PES V2 `PES_Aller` file of a bordereau of titres
//! (`schemas/pes-v2/PES_V2/Rev0/PES_Aller.xsd`), written with the SDK's XML
//! writer ([`aiguillage_connector::xml`]) in the schema's element order, every value in the
//! `V` attribute.
//!
//! Texts: control characters are refused with the field named; tabs and line breaks become
//! spaces (an attribute would turn them into spaces anyway); in ISO-8859-1 a character
//! outside it is transliterated (`œ` → `oe`, `’` → `'`) or refused when `transliterate` is
//! off; a text longer than the PES allows is refused with its field and limit (the mapping
//! shortens citizens' texts, the connector never cuts silently).

use std::borrow::Cow;

use aiguillage_connector::xml::{self, XmlError, XmlOptions, XmlWriter};

use crate::amount::{self, Cents};
use crate::config::Encoding;
use crate::titre::{FieldError, Titre};

/// The namespace of the root element `PES_Aller` (the only qualified element).
pub const NAMESPACE: &str = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller";

/// How texts are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    /// The file's encoding.
    pub encoding: Encoding,
    /// In ISO-8859-1, replace characters outside it by their closest Latin letters
    /// (`true`) or refuse the titre (`false`).
    pub transliterate: bool,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self {
            encoding: Encoding::Latin1,
            transliterate: true,
        }
    }
}

/// What the configuration says of the collectivité (`EnTetePES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collectivite {
    /// SIRET of the budget's collectivité (`IdColl`).
    pub id_coll: String,
    /// Code collectivité (`CodCol`).
    pub cod_col: String,
    /// Code budget (`CodBud`).
    pub cod_bud: String,
    /// Codique of the poste comptable (`IdPost`).
    pub id_post: String,
    /// `LibelleColBud`, if any.
    pub libelle: Option<String>,
}

/// A titre and its number in the bordereau.
#[derive(Debug, Clone, Copy)]
pub struct Piece<'a> {
    /// `IdPce`, unique within the bordereau.
    pub id_pce: u64,
    /// The titre.
    pub titre: &'a Titre,
    /// Its piece justificative (the bill's PDF), embedded in `PES_PJ` and referenced from
    /// the piece by `PJRef`; none by default.
    pub pj: Option<&'a PieceJointe>,
}

/// A piece justificative embedded in the file (`PES_PJ/PJ`): the file is written gzip-ed
/// then in base 64, as the PES asks.
#[derive(Clone, PartialEq, Eq)]
pub struct PieceJointe {
    /// `IdUnique`: 1 to 50 letters or digits, unique for the Treasury whatever the
    /// exercice and budget; written in the `PJRef` of the piece too.
    pub id_unique: String,
    /// `NomPJ`: the file name, with an extension of 2 to 4 letters or digits (`.pdf`).
    pub nom: String,
    /// `Description` (250 characters at most).
    pub description: String,
    /// `MIMEType` of the file, e.g. `application/pdf`.
    pub mime_type: String,
    /// The file's bytes, before compression.
    pub content: Vec<u8>,
}

// The content is never printed: it is a citizen's bill.
impl std::fmt::Debug for PieceJointe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PieceJointe")
            .field("id_unique", &self.id_unique)
            .field("nom", &self.nom)
            .field("mime_type", &self.mime_type)
            .field("len", &self.content.len())
            .finish_non_exhaustive()
    }
}

/// A bordereau of titres: one file.
#[derive(Debug, Clone)]
pub struct Bordereau<'a> {
    /// `NomFic`: the file's name.
    pub nom_fic: String,
    /// `Exer`.
    pub exercice: u16,
    /// `IdBord`.
    pub id_bord: u64,
    /// `DteBordEm` and `DteStr`, `YYYY-MM-DD`.
    pub date: String,
    /// The titres, at least one.
    pub pieces: Vec<Piece<'a>>,
}

impl Bordereau<'_> {
    /// `MtBordHt`: the sum of every line of every titre.
    pub fn total(&self) -> Option<Cents> {
        self.pieces
            .iter()
            .flat_map(|piece| piece.titre.montants())
            .try_fold(Cents(0), Cents::checked_add)
    }
}

/// The file of `bordereau`, in bytes of the chosen encoding.
///
/// # Errors
///
/// A [`FieldError`] naming a field whose text cannot be written (control character,
/// character outside ISO-8859-1 without transliteration, too long), or a number beyond what
/// the PES can hold.
pub fn encode(
    collectivite: &Collectivite,
    bordereau: &Bordereau<'_>,
    options: EncodeOptions,
) -> Result<Vec<u8>, FieldError> {
    if bordereau.pieces.is_empty() {
        return Err(FieldError::new(
            "",
            "un bordereau demande au moins un titre",
        ));
    }
    if bordereau.id_bord == 0 || bordereau.id_bord > 9_999_999 {
        return Err(FieldError::new(
            "",
            format!(
                "le numéro de bordereau {} dépasse les 7 chiffres d'IdBord : ouvrir une nouvelle séquence (nouveau code budget) avec le Trésor public",
                bordereau.id_bord
            ),
        ));
    }
    if bordereau.pieces.len() > 99_999 {
        return Err(FieldError::new(
            "",
            "plus de 99999 titres dans un bordereau",
        ));
    }
    let total = bordereau.total().ok_or_else(|| {
        FieldError::new(
            "lignes",
            "le total du bordereau dépasse les 14 chiffres d'un montant PES",
        )
    })?;
    let xml_options = XmlOptions::new(options.encoding).transliterate(options.transliterate);
    xml::document(xml_options, "n:PES_Aller", &[("xmlns:n", NAMESPACE)], |w| {
        w.element("Enveloppe", |w| {
            w.element("Parametres", |w| {
                code(w, "Version", "1")?;
                code(w, "TypFic", "PESALR1")?;
                text(w, "NomFic", "file_name", &bordereau.nom_fic, 100)
            })
        })?;
        w.element("EnTetePES", |w| {
            code(w, "DteStr", &bordereau.date)?;
            code(w, "IdPost", &collectivite.id_post)?;
            code(w, "IdColl", &collectivite.id_coll)?;
            code(w, "CodCol", &collectivite.cod_col)?;
            code(w, "CodBud", &collectivite.cod_bud)?;
            match &collectivite.libelle {
                Some(libelle) => text(w, "LibelleColBud", "libelle", libelle, 38),
                None => Ok(()),
            }
        })?;
        w.element("PES_RecetteAller", |w| {
            w.element("EnTeteRecette", |w| {
                code(w, "IdVer", "2")?;
                // 1 only with an electronic signature, which the connector does not make.
                code(w, "InfoDematerialisee", "0")
            })?;
            w.element("Bordereau", |w| {
                w.element("BlocBordereau", |w| {
                    code(w, "Exer", &bordereau.exercice.to_string())?;
                    code(w, "IdBord", &bordereau.id_bord.to_string())?;
                    code(w, "DteBordEm", &bordereau.date)?;
                    // Ordinary titres of operating revenue: TypBord 01, TypPce 01, NatPce 01.
                    code(w, "TypBord", "01")?;
                    code(w, "NbrPce", &bordereau.pieces.len().to_string())?;
                    code(w, "MtBordHt", &total.to_string())
                })?;
                bordereau.pieces.iter().try_for_each(|p| piece(w, p))
            })
        })?;
        let pjs: Vec<&PieceJointe> = bordereau.pieces.iter().filter_map(|p| p.pj).collect();
        if pjs.is_empty() {
            return Ok(());
        }
        w.element("PES_PJ", |w| {
            w.element("EnTetePES_PJ", |w| {
                // The only version the Treasury takes.
                code(w, "IdVer", "1")
            })?;
            pjs.into_iter().try_for_each(|p| pj(w, p))
        })
    })
}

// The markup is the SDK's: a refused text is reported under the titre's field it came
// from, anything else under its element.
impl From<XmlError> for FieldError {
    fn from(error: XmlError) -> Self {
        FieldError::new("", error.to_string())
    }
}

/// `<name V="value"/>` for a value of the connector's own (a code, a number, a date).
fn code(w: &mut XmlWriter, name: &str, value: &str) -> Result<(), FieldError> {
    Ok(w.empty_element(name, &[("V", value)])?)
}

/// `<name V="…"/>` for the text of `field`, checked against `Base_Texte<max>`: in the
/// file's character set, whitespace made single-line (an attribute would turn tabs and
/// line breaks into spaces anyway), trimmed.
fn text(
    w: &mut XmlWriter,
    name: &str,
    field: &str,
    value: &str,
    max: usize,
) -> Result<(), FieldError> {
    let refuse = |error: XmlError| match error {
        XmlError::Character { .. } => FieldError::new(field, error.reason()),
        other => other.into(),
    };
    let single_line = if value.contains(['\t', '\n', '\r']) {
        Cow::Owned(value.replace(['\t', '\n', '\r'], " "))
    } else {
        Cow::Borrowed(value)
    };
    let text = w.convert(&single_line).map_err(refuse)?;
    let text = text.trim();
    let length = text.chars().count();
    if length > max {
        return Err(FieldError::new(
            field,
            format!(
                "{length} caractères : le PES en permet {max} dans {name} ; le raccourcir dans le mapping"
            ),
        ));
    }
    if text.is_empty() || text == "." || text == "nc" || text.chars().all(|c| c == '0') {
        return Err(FieldError::new(
            field,
            format!(
                "`{}` n'est pas une valeur que le Trésor public accepte dans {name}",
                text.escape_debug()
            ),
        ));
    }
    w.empty_element(name, &[("V", text)]).map_err(refuse)
}

fn piece(w: &mut XmlWriter, piece: &Piece<'_>) -> Result<(), FieldError> {
    let titre = piece.titre;
    if piece.id_pce == 0 || piece.id_pce > 99_999_999 {
        return Err(FieldError::new(
            "",
            format!(
                "le numéro de titre {} dépasse les 8 chiffres d'IdPce",
                piece.id_pce
            ),
        ));
    }
    w.element("Piece", |w| {
        w.element("BlocPiece", |w| {
            code(w, "IdPce", &piece.id_pce.to_string())?;
            code(w, "TypPce", "01")?;
            code(w, "NatPce", "01")?;
            text(w, "ObjPce", "objet", &titre.objet, 160)?;
            match piece.pj {
                Some(pj) => w.element("PJRef", |w| {
                    // 01: an electronic document, carried in PES_PJ of the same file.
                    code(w, "Support", "01")?;
                    id_unique(w, pj)?;
                    text(w, "NomPJ", "attachment filename", &pj.nom, 100)
                }),
                None => Ok(()),
            }
        })?;
        for (index, (ligne, montant)) in titre.lignes.iter().zip(titre.montants()).enumerate() {
            w.element("LigneDePiece", |w| {
                w.element("BlocLignePiece", |w| {
                    w.element("InfoLignePiece", |w| {
                        code(w, "IdLigne", &(index + 1).to_string())?;
                        text(
                            w,
                            "ObjLignePce",
                            &format!("lignes[{index}].libelle"),
                            &ligne.libelle,
                            160,
                        )?;
                        code(w, "CodProdLoc", &titre.imputation.code_produit)?;
                        code(w, "Nature", &titre.imputation.nature)?;
                        if let Some(fonction) = &titre.imputation.fonction {
                            code(w, "Fonction", fonction)?;
                        }
                        let rate = match &ligne.taux_tva {
                            Some(text) => amount::parse_rate(text).map_err(|reason| {
                                FieldError::new(format!("lignes[{index}].taux_tva"), reason)
                            })?,
                            None => 0,
                        };
                        if rate > 0 {
                            code(w, "TxTva", &format!("{}.{:02}", rate / 100, rate % 100))?;
                        }
                        code(w, "Majo", "0")?;
                        code(w, "TvaIntraCom", "0")?;
                        code(w, "MtHT", &montant.to_string())?;
                        let vat = amount::vat(montant, rate);
                        match vat {
                            0 => Ok(()),
                            _ => code(w, "MtTVA", &Cents(vat).to_string()),
                        }
                    })
                })?;
                // The debtor on every line, as Hélios reads it.
                tiers(w, titre)
            })?;
        }
        Ok(())
    })
}

fn id_unique(w: &mut XmlWriter, pj: &PieceJointe) -> Result<(), FieldError> {
    let id = &pj.id_unique;
    if id.is_empty()
        || id.len() > 50
        || !id.bytes().all(|b| b.is_ascii_alphanumeric())
        || id.bytes().all(|b| b == b'0')
    {
        return Err(FieldError::new(
            "",
            format!(
                "`{}` n'est pas un IdUnique de PJ (1 à 50 lettres ou chiffres)",
                id.escape_debug()
            ),
        ));
    }
    code(w, "IdUnique", id)
}

/// `PES_PJ/PJ`: the file gzip-ed then in base 64, its identifier, name and description.
fn pj(w: &mut XmlWriter, pj: &PieceJointe) -> Result<(), FieldError> {
    use base64::Engine as _;
    w.element("PJ", |w| {
        w.element("Contenu", |w| {
            let encoded = base64::engine::general_purpose::STANDARD
                .encode(crate::gzip::gzip_stored(&pj.content));
            w.element_with("Fichier", &[("MIMEType", pj.mime_type.as_str())], |w| {
                w.text(&encoded)
            })
        })?;
        id_unique(w, pj)?;
        text(w, "NomPJ", "attachment filename", &pj.nom, 100)?;
        // 002: a piece of the Recette domain.
        code(w, "TypePJ", "002")?;
        text(w, "Description", "objet", &pj.description, 250)
    })
}

fn tiers(w: &mut XmlWriter, titre: &Titre) -> Result<(), FieldError> {
    let debiteur = &titre.debiteur;
    w.element("Tiers", |w| {
        w.element("InfoTiers", |w| {
            if let Some(reference) = &debiteur.reference_tiers {
                text(w, "RefTiers", "debiteur.reference_tiers", reference, 30)?;
            }
            // A private person, principal debtor.
            code(w, "CatTiers", "01")?;
            code(w, "NatJur", "01")?;
            code(w, "TypTiers", "01")?;
            code(w, "Civilite", &debiteur.civilite)?;
            text(w, "Nom", "debiteur.nom", &debiteur.nom, 38)?;
            text(w, "Prenom", "debiteur.prenom", &debiteur.prenom, 38)
        })?;
        let adresse = &debiteur.adresse;
        w.element("Adresse", |w| {
            code(w, "TypAdr", "1")?;
            text(w, "Adr2", "debiteur.adresse.ligne", &adresse.ligne, 38)?;
            if let Some(complement) = &adresse.complement {
                text(w, "Adr3", "debiteur.adresse.complement", complement, 38)?;
            }
            code(w, "CP", &adresse.code_postal)?;
            text(w, "Ville", "debiteur.adresse.ville", &adresse.ville, 38)?;
            // Resident in France: the document refuses other countries.
            code(w, "CodRes", "0")
        })
    })
}
