//! The package: `dossier.json`, `dossier.xml`, `pieces/<CODE>.<ext>`, then
//! `manifest.json`, written into a temporary work directory, as a zip `<dossier>.zip`
//! (every entry stored, dated at the deposit date, in that fixed order: the same envelope
//! always gives the same bytes) or as a directory `<dossier>/`.
//!
//! Nothing holds a second copy of a pièce: each is written from the attachment's bytes
//! (borrowed) straight into the file, through a [`HashingWriter`] that computes its SHA-512
//! and size as the bytes pass. The pièces' digests are also computed before writing,
//! because `dossier.json`, the first entry, carries them; the two must agree. The work
//! directory is removed when the [`Package`] is dropped, also after an error.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest as _, Sha512};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::json::{self, Digest};
use crate::manifest::{Fichier, Manifest, MANIFEST};
use crate::validate::ValidDossier;
use crate::xml;

/// How a dossier is packaged (the connector's `package` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageFormat {
    /// One zip file, `<dossier>.zip` (default).
    #[default]
    Zip,
    /// A directory `<dossier>/`, `manifest.json` written last.
    Directory,
}

/// Writing the package failed: a disk problem of the work directory (transient).
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The work directory could not be made.
    #[error("impossible de créer un répertoire de travail dans {} : {source}", directory.display())]
    WorkDirectory {
        /// The configured `work_directory`.
        directory: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file of the package could not be written.
    #[error("l'écriture du paquet dans {} a échoué ({entry}) : {source}", directory.display())]
    Write {
        /// The entry (`pieces/DP1.pdf`).
        entry: String,
        /// The work directory.
        directory: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// A writer that computes the SHA-512 and the size of what passes through it.
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha512,
    taille: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha512::new(),
            taille: 0,
        }
    }

    /// The size and SHA-512 of what was written, and the inner writer.
    pub fn finish(self) -> (W, Digest) {
        let digest = Digest {
            taille: self.taille,
            sha512: hex(&self.hasher.finalize()),
        };
        (self.inner, digest)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.taille += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The SHA-512 and size of `bytes`.
pub fn digest(bytes: &[u8]) -> Digest {
    Digest {
        taille: bytes.len() as u64,
        sha512: hex(&Sha512::digest(bytes)),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A package written in its work directory (removed on drop).
#[derive(Debug)]
pub struct Package {
    work: tempfile::TempDir,
    format: PackageFormat,
    manifest: Manifest,
}

impl Package {
    /// The dossier identifier, which names the package.
    pub fn dossier(&self) -> &str {
        &self.manifest.dossier
    }

    /// Zip or directory.
    pub fn format(&self) -> PackageFormat {
        self.format
    }

    /// The manifest written last into the package.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The package's name at the target: `<dossier>.zip` or `<dossier>` (a directory).
    pub fn name(&self) -> String {
        match self.format {
            PackageFormat::Zip => format!("{}.zip", self.dossier()),
            PackageFormat::Directory => self.dossier().to_owned(),
        }
    }

    /// Where the package is in the work directory (the zip file, or the directory).
    pub fn path(&self) -> PathBuf {
        self.work.path().join(self.name())
    }

    /// The files to publish, in order, each as (path relative to the target's directory,
    /// path in the work directory): the zip alone, or every file of the directory with
    /// `manifest.json` last.
    pub fn files(&self) -> Vec<(String, PathBuf)> {
        let root = self.path();
        match self.format {
            PackageFormat::Zip => vec![(self.name(), root)],
            PackageFormat::Directory => self
                .manifest
                .fichiers
                .iter()
                .map(|f| f.chemin.as_str())
                .chain([MANIFEST])
                .map(|chemin| (format!("{}/{chemin}", self.name()), root.join(chemin)))
                .collect(),
        }
    }
}

/// Something the entries of a package go into: a zip, or a directory.
trait Sink {
    /// Writes one entry and returns what passed.
    fn entry(&mut self, name: &str, bytes: &[u8]) -> io::Result<Digest>;
    /// Completes the package.
    fn finish(self: Box<Self>) -> io::Result<()>;
}

struct ZipSink {
    zip: ZipWriter<BufWriter<File>>,
    options: SimpleFileOptions,
}

impl Sink for ZipSink {
    fn entry(&mut self, name: &str, bytes: &[u8]) -> io::Result<Digest> {
        // ZIP64 for an entry of 4 GiB or more (the limits allow it when raised).
        let large = bytes.len() as u64 >= u64::from(u32::MAX);
        self.zip
            .start_file(name, self.options.large_file(large))
            .map_err(io::Error::other)?;
        let mut writer = HashingWriter::new(&mut self.zip);
        writer.write_all(bytes)?;
        Ok(writer.finish().1)
    }

    fn finish(self: Box<Self>) -> io::Result<()> {
        let mut file = self.zip.finish().map_err(io::Error::other)?;
        file.flush()?;
        file.into_inner().map_err(|e| e.into_error())?.sync_all()
    }
}

struct DirectorySink {
    root: PathBuf,
}

impl Sink for DirectorySink {
    fn entry(&mut self, name: &str, bytes: &[u8]) -> io::Result<Digest> {
        let path = self.root.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut writer = HashingWriter::new(File::create(&path)?);
        writer.write_all(bytes)?;
        let (file, digest) = writer.finish();
        file.sync_all()?;
        Ok(digest)
    }

    fn finish(self: Box<Self>) -> io::Result<()> {
        Ok(())
    }
}

/// The zip time of the deposit date, as written in its own offset (zip times have no
/// zone); DOS times count seconds by two.
fn zip_time(dossier: &ValidDossier<'_>) -> DateTime {
    let d = dossier.depot.date_depot;
    DateTime::from_date_and_time(
        u16::try_from(d.year()).unwrap_or(1980),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second() & !1,
    )
    // Validation keeps the year within 1980–2107, the zip range.
    .unwrap_or_default()
}

/// Writes the package of `dossier` (read from `document`) into a new temporary directory
/// under `work_directory`.
///
/// # Errors
///
/// A [`PackageError`] when the work directory cannot be made or written (the partial
/// package is removed).
pub fn build(
    document: &serde_json::Value,
    dossier: &ValidDossier<'_>,
    format: PackageFormat,
    work_directory: &Path,
) -> Result<Package, PackageError> {
    let digests: Vec<Digest> = dossier.pieces.iter().map(|p| digest(p.content)).collect();
    let dossier_json = json::to_bytes(&json::value(document, dossier, &digests));
    let dossier_xml = xml::to_bytes(dossier, &digests).map_err(|error| PackageError::Write {
        entry: "dossier.xml".into(),
        directory: work_directory.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidData, error),
    })?;

    let work = tempfile::Builder::new()
        .prefix(".aiguillage-urbanisme-")
        .tempdir_in(work_directory)
        .map_err(|source| PackageError::WorkDirectory {
            directory: work_directory.to_owned(),
            source,
        })?;
    let mut manifest = Manifest::new(&dossier.dossier, &dossier.depot.identifiant);
    let write_error = |entry: &str, source: io::Error| PackageError::Write {
        entry: entry.to_owned(),
        directory: work.path().to_owned(),
        source,
    };
    let mut sink: Box<dyn Sink> = match format {
        PackageFormat::Zip => {
            let path = work.path().join(format!("{}.zip", dossier.dossier));
            let file = File::create(&path).map_err(|e| write_error("the zip", e))?;
            let options = SimpleFileOptions::default()
                .compression_method(CompressionMethod::Stored)
                .last_modified_time(zip_time(dossier))
                .unix_permissions(0o644);
            Box::new(ZipSink {
                zip: ZipWriter::new(BufWriter::with_capacity(1 << 16, file)),
                options,
            })
        }
        PackageFormat::Directory => {
            let root = work.path().join(&dossier.dossier);
            fs::create_dir(&root).map_err(|e| write_error("son répertoire", e))?;
            Box::new(DirectorySink { root })
        }
    };

    let mut entries: Vec<(&str, &[u8], &str, Option<&Digest>)> = vec![
        (
            "dossier.json",
            dossier_json.as_slice(),
            "application/json",
            None,
        ),
        (
            "dossier.xml",
            dossier_xml.as_slice(),
            "application/xml",
            None,
        ),
    ];
    for (piece, announced) in dossier.pieces.iter().zip(&digests) {
        entries.push((
            piece.chemin.as_str(),
            piece.content,
            piece.media_type.as_str(),
            Some(announced),
        ));
    }
    for (name, bytes, type_media, announced) in entries {
        let written = sink.entry(name, bytes).map_err(|e| write_error(name, e))?;
        if announced.is_some_and(|announced| *announced != written) {
            return Err(write_error(
                name,
                io::Error::other(
                    "les octets écrits diffèrent de ceux dont l'empreinte figure dans dossier.json",
                ),
            ));
        }
        manifest.fichiers.push(Fichier {
            chemin: name.to_owned(),
            taille: written.taille,
            type_media: type_media.to_owned(),
            sha512: written.sha512,
        });
    }
    sink.entry(MANIFEST, &manifest.to_bytes())
        .map_err(|e| write_error(MANIFEST, e))?;
    sink.finish()
        .map_err(|e| write_error("sa finalisation", e))?;
    Ok(Package {
        work,
        format,
        manifest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hashing_writer_hashes_what_passes() {
        let mut writer = HashingWriter::new(Vec::new());
        writer.write_all(b"ab").unwrap();
        writer.write_all(b"c").unwrap();
        let (bytes, written) = writer.finish();
        assert_eq!(bytes, b"abc");
        assert_eq!(written, digest(b"abc"));
        assert_eq!(written.taille, 3);
        // SHA-512("abc"), FIPS 180-2.
        assert!(
            written.sha512.starts_with("ddaf35a193617aba"),
            "{}",
            written.sha512
        );
        assert_eq!(written.sha512.len(), 128);
    }
}
