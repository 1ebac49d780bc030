//! The PES V2 `PES_Aller` file of a bordereau of titres
//! (`../shared/schemas/pes-v2/PES_V2/Rev0/PES_Aller.xsd`), written with quick-xml in the
//! schema's element order, every value in the `V` attribute.
//!
//! Texts: control characters are refused with the field named; tabs and line breaks become
//! spaces (an attribute would turn them into spaces anyway); in ISO-8859-1 a character
//! outside it is transliterated (`œ` → `oe`, `’` → `'`) or refused when `transliterate` is
//! off; a text longer than the PES allows is refused with its field and limit (the mapping
//! shortens citizens' texts, the connector never cuts silently).

use std::borrow::Cow;

use aiguillage_connector::charset::{self, Refused};
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

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
        return Err(FieldError::new("", "a bordereau needs at least one titre"));
    }
    if bordereau.id_bord == 0 || bordereau.id_bord > 9_999_999 {
        return Err(FieldError::new(
            "",
            format!(
                "bordereau number {} is beyond the 7 digits of IdBord: start a new sequence (new budget code) with the Treasury",
                bordereau.id_bord
            ),
        ));
    }
    if bordereau.pieces.len() > 99_999 {
        return Err(FieldError::new("", "more than 99999 titres in a bordereau"));
    }
    let total = bordereau.total().ok_or_else(|| {
        FieldError::new(
            "lignes",
            "the bordereau's total is more than the 14 digits a PES amount can have",
        )
    })?;
    let mut xml = Xml {
        writer: Writer::new_with_indent(Vec::new(), b' ', 2),
        options,
    };
    xml.event(Event::Decl(BytesDecl::new(
        "1.0",
        Some(options.encoding.xml_name()),
        None,
    )))?;
    let mut root = BytesStart::new("n:PES_Aller");
    root.push_attribute(("xmlns:n", NAMESPACE));
    xml.event(Event::Start(root))?;

    xml.open("Enveloppe")?;
    xml.open("Parametres")?;
    xml.code("Version", "1")?;
    xml.code("TypFic", "PESALR1")?;
    xml.text("NomFic", "file_name", &bordereau.nom_fic, 100)?;
    xml.close("Parametres")?;
    xml.close("Enveloppe")?;

    xml.open("EnTetePES")?;
    xml.code("DteStr", &bordereau.date)?;
    xml.code("IdPost", &collectivite.id_post)?;
    xml.code("IdColl", &collectivite.id_coll)?;
    xml.code("CodCol", &collectivite.cod_col)?;
    xml.code("CodBud", &collectivite.cod_bud)?;
    if let Some(libelle) = &collectivite.libelle {
        xml.text("LibelleColBud", "libelle", libelle, 38)?;
    }
    xml.close("EnTetePES")?;

    xml.open("PES_RecetteAller")?;
    xml.open("EnTeteRecette")?;
    xml.code("IdVer", "2")?;
    // 1 only with an electronic signature, which the connector does not make.
    xml.code("InfoDematerialisee", "0")?;
    xml.close("EnTeteRecette")?;

    xml.open("Bordereau")?;
    xml.open("BlocBordereau")?;
    xml.code("Exer", &bordereau.exercice.to_string())?;
    xml.code("IdBord", &bordereau.id_bord.to_string())?;
    xml.code("DteBordEm", &bordereau.date)?;
    // Ordinary titres of operating revenue: TypBord 01, TypPce 01, NatPce 01.
    xml.code("TypBord", "01")?;
    xml.code("NbrPce", &bordereau.pieces.len().to_string())?;
    xml.code("MtBordHt", &total.to_string())?;
    xml.close("BlocBordereau")?;
    for piece in &bordereau.pieces {
        xml.piece(piece)?;
    }
    xml.close("Bordereau")?;
    xml.close("PES_RecetteAller")?;
    let pjs: Vec<&PieceJointe> = bordereau.pieces.iter().filter_map(|p| p.pj).collect();
    if !pjs.is_empty() {
        xml.open("PES_PJ")?;
        xml.open("EnTetePES_PJ")?;
        // The only version the Treasury takes.
        xml.code("IdVer", "1")?;
        xml.close("EnTetePES_PJ")?;
        for pj in pjs {
            xml.pj(pj)?;
        }
        xml.close("PES_PJ")?;
    }
    xml.close("n:PES_Aller")?;

    let mut text = xml.writer.into_inner();
    text.push(b'\n');
    Ok(options.encoding.bytes(text))
}

/// The writer and the options of one file.
struct Xml {
    writer: Writer<Vec<u8>>,
    options: EncodeOptions,
}

impl Xml {
    fn event(&mut self, event: Event<'_>) -> Result<(), FieldError> {
        // Writing into a Vec cannot fail; the error is mapped rather than unwrapped.
        self.writer
            .write_event(event)
            .map_err(|error| FieldError::new("", format!("cannot write the XML: {error}")))
    }

    fn open(&mut self, name: &str) -> Result<(), FieldError> {
        self.event(Event::Start(BytesStart::new(name)))
    }

    fn close(&mut self, name: &str) -> Result<(), FieldError> {
        self.event(Event::End(BytesEnd::new(name)))
    }

    /// `<name V="value"/>` for a value of the connector's own (a code, a number, a date).
    fn code(&mut self, name: &str, value: &str) -> Result<(), FieldError> {
        let mut element = BytesStart::new(name);
        element.push_attribute(("V", value));
        self.event(Event::Empty(element))
    }

    /// `<name V="…"/>` for the text of `field`, checked against `Base_Texte<max>`.
    fn text(&mut self, name: &str, field: &str, value: &str, max: usize) -> Result<(), FieldError> {
        let text = self.convert(field, value)?;
        let text = text.trim();
        let length = text.chars().count();
        if length > max {
            return Err(FieldError::new(
                field,
                format!(
                    "{length} characters: the PES allows {max} in {name}; shorten it in the mapping"
                ),
            ));
        }
        if text.is_empty() || text == "." || text == "nc" || text.chars().all(|c| c == '0') {
            return Err(FieldError::new(
                field,
                format!(
                    "`{}` is not a value the Treasury accepts in {name}",
                    text.escape_debug()
                ),
            ));
        }
        self.code(name, text)
    }

    /// The text of `field` in the file's character set, whitespace made single-line.
    fn convert<'a>(&self, field: &str, value: &'a str) -> Result<Cow<'a, str>, FieldError> {
        let refuse = |refused| {
            FieldError::new(
                field,
                match refused {
                    Refused::Control(c) => format!(
                        "contains the control character U+{:04X}, which an XML file cannot carry: remove it from the démarche",
                        u32::from(c)
                    ),
                    Refused::NoEquivalent(c) => format!(
                        "the character {c:?} (U+{:04X}) has no equivalent in ISO-8859-1, the encoding of PES files: correct the démarche",
                        u32::from(c)
                    ),
                    Refused::NotInLatin1(c) => format!(
                        "the character {c:?} (U+{:04X}) is not in ISO-8859-1, the encoding of PES files, and `transliterate` is off: correct the démarche, or set `transliterate = true`",
                        u32::from(c)
                    ),
                },
            )
        };
        let (encoding, transliterate) = (self.options.encoding, self.options.transliterate);
        // Tabs and line breaks are writable; in an attribute they would become spaces anyway.
        if value.contains(['\t', '\n', '\r']) {
            let single_line = value.replace(['\t', '\n', '\r'], " ");
            return charset::convert(&single_line, encoding, transliterate)
                .map(|text| Cow::Owned(text.into_owned()))
                .map_err(refuse);
        }
        charset::convert(value, encoding, transliterate).map_err(refuse)
    }

    fn piece(&mut self, piece: &Piece<'_>) -> Result<(), FieldError> {
        let titre = piece.titre;
        if piece.id_pce == 0 || piece.id_pce > 99_999_999 {
            return Err(FieldError::new(
                "",
                format!(
                    "titre number {} is beyond the 8 digits of IdPce",
                    piece.id_pce
                ),
            ));
        }
        self.open("Piece")?;
        self.open("BlocPiece")?;
        self.code("IdPce", &piece.id_pce.to_string())?;
        self.code("TypPce", "01")?;
        self.code("NatPce", "01")?;
        self.text("ObjPce", "objet", &titre.objet, 160)?;
        if let Some(pj) = piece.pj {
            self.open("PJRef")?;
            // 01: an electronic document, carried in PES_PJ of the same file.
            self.code("Support", "01")?;
            self.id_unique(pj)?;
            self.text("NomPJ", "attachment filename", &pj.nom, 100)?;
            self.close("PJRef")?;
        }
        self.close("BlocPiece")?;
        for (index, (ligne, montant)) in titre.lignes.iter().zip(titre.montants()).enumerate() {
            self.open("LigneDePiece")?;
            self.open("BlocLignePiece")?;
            self.open("InfoLignePiece")?;
            self.code("IdLigne", &(index + 1).to_string())?;
            self.text(
                "ObjLignePce",
                &format!("lignes[{index}].libelle"),
                &ligne.libelle,
                160,
            )?;
            self.code("CodProdLoc", &titre.imputation.code_produit)?;
            self.code("Nature", &titre.imputation.nature)?;
            if let Some(fonction) = &titre.imputation.fonction {
                self.code("Fonction", fonction)?;
            }
            let rate = match &ligne.taux_tva {
                Some(text) => amount::parse_rate(text).map_err(|reason| {
                    FieldError::new(format!("lignes[{index}].taux_tva"), reason)
                })?,
                None => 0,
            };
            if rate > 0 {
                self.code("TxTva", &format!("{}.{:02}", rate / 100, rate % 100))?;
            }
            self.code("Majo", "0")?;
            self.code("TvaIntraCom", "0")?;
            self.code("MtHT", &montant.to_string())?;
            let vat = amount::vat(montant, rate);
            if vat > 0 {
                self.code("MtTVA", &Cents(vat).to_string())?;
            }
            self.close("InfoLignePiece")?;
            self.close("BlocLignePiece")?;
            // The debtor on every line, as Hélios reads it.
            self.tiers(titre)?;
            self.close("LigneDePiece")?;
        }
        self.close("Piece")
    }

    fn id_unique(&mut self, pj: &PieceJointe) -> Result<(), FieldError> {
        let id = &pj.id_unique;
        if id.is_empty()
            || id.len() > 50
            || !id.bytes().all(|b| b.is_ascii_alphanumeric())
            || id.bytes().all(|b| b == b'0')
        {
            return Err(FieldError::new(
                "",
                format!(
                    "`{}` is not a PJ IdUnique (1 to 50 letters or digits)",
                    id.escape_debug()
                ),
            ));
        }
        self.code("IdUnique", id)
    }

    /// `PES_PJ/PJ`: the file gzip-ed then in base 64, its identifier, name and description.
    fn pj(&mut self, pj: &PieceJointe) -> Result<(), FieldError> {
        use base64::Engine as _;
        self.open("PJ")?;
        self.open("Contenu")?;
        let mut fichier = BytesStart::new("Fichier");
        fichier.push_attribute(("MIMEType", pj.mime_type.as_str()));
        self.event(Event::Start(fichier))?;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(crate::gzip::gzip_stored(&pj.content));
        self.event(Event::Text(BytesText::from_escaped(encoded)))?;
        self.close("Fichier")?;
        self.close("Contenu")?;
        self.id_unique(pj)?;
        self.text("NomPJ", "attachment filename", &pj.nom, 100)?;
        // 002: a piece of the Recette domain.
        self.code("TypePJ", "002")?;
        self.text("Description", "objet", &pj.description, 250)?;
        self.close("PJ")
    }

    fn tiers(&mut self, titre: &Titre) -> Result<(), FieldError> {
        let debiteur = &titre.debiteur;
        self.open("Tiers")?;
        self.open("InfoTiers")?;
        if let Some(reference) = &debiteur.reference_tiers {
            self.text("RefTiers", "debiteur.reference_tiers", reference, 30)?;
        }
        // A private person, principal debtor.
        self.code("CatTiers", "01")?;
        self.code("NatJur", "01")?;
        self.code("TypTiers", "01")?;
        self.code("Civilite", &debiteur.civilite)?;
        self.text("Nom", "debiteur.nom", &debiteur.nom, 38)?;
        self.text("Prenom", "debiteur.prenom", &debiteur.prenom, 38)?;
        self.close("InfoTiers")?;
        let adresse = &debiteur.adresse;
        self.open("Adresse")?;
        self.code("TypAdr", "1")?;
        self.text("Adr2", "debiteur.adresse.ligne", &adresse.ligne, 38)?;
        if let Some(complement) = &adresse.complement {
            self.text("Adr3", "debiteur.adresse.complement", complement, 38)?;
        }
        self.code("CP", &adresse.code_postal)?;
        self.text("Ville", "debiteur.adresse.ville", &adresse.ville, 38)?;
        // Resident in France: the document refuses other countries.
        self.code("CodRes", "0")?;
        self.close("Adresse")?;
        self.close("Tiers")
    }
}
