//! The `etat-civil/cityweb` connector of Aiguillage: each mapped « demande d'acte » is
//! written as one Cityweb `demandeEtatCivil` XML file into the état-civil software's
//! import directory, locally or over SFTP.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod document;
pub mod encode;

pub use document::{
    DemandeActe, FieldError, Genre, NatureDocument, NatureEvenement, Origine, PartialDate,
    QualiteDemandeur, Sexe, TypeInteresse,
};
pub use encode::{encode, EncodeOptions, Encoding};
