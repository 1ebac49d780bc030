//! Secrets in configurations: given inline (or by the environment, which overrides any
//! key), or read from a file (`<key>_file`, e.g. a Docker or systemd credential).
//!
//! Secrets are held in [`SecretString`], which never prints its value.

use std::path::Path;

pub use secrecy::{ExposeSecret, SecretString};

use crate::{ConfigError, Setup};

/// Resolves a secret given either inline (`key = "…"`) or by file (`key_file = "…"`).
///
/// The file's content is taken without its trailing newline. Relative paths are resolved
/// from the configuration's directory.
///
/// # Errors
///
/// [`ConfigError::MissingSecret`] when neither is given, the file cannot be read or is
/// empty; [`ConfigError::Invalid`] when both are given.
pub fn resolve(
    key: &str,
    inline: Option<SecretString>,
    file: Option<&Path>,
    setup: &Setup,
) -> Result<SecretString, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            key,
            format!("indiquer soit `{key}`, soit `{key}_file`, pas les deux"),
        )),
        (Some(secret), None) => {
            if secret.expose_secret().is_empty() {
                Err(ConfigError::missing_secret(
                    key,
                    format!("`{key}` est vide : le renseigner, ou indiquer `{key}_file`"),
                ))
            } else {
                Ok(secret)
            }
        }
        (None, Some(path)) => {
            let path = setup.resolve(path);
            let text = std::fs::read_to_string(&path).map_err(|error| {
                ConfigError::missing_secret(
                    format!("{key}_file"),
                    format!(
                        "impossible de lire le fichier secret {} : {error} (corriger le chemin ou les droits du fichier)",
                        path.display()
                    ),
                )
            })?;
            let value = text.trim_end_matches(['\n', '\r']);
            if value.is_empty() {
                return Err(ConfigError::missing_secret(
                    format!("{key}_file"),
                    format!("le fichier secret {} est vide", path.display()),
                ));
            }
            Ok(SecretString::from(value.to_owned()))
        }
        (None, None) => Err(ConfigError::missing_secret(
            key,
            format!("secret manquant : renseigner `{key}`, ou `{key}_file` avec le chemin d'un fichier qui le contient, ou la variable d'environnement qui remplace `{key}`"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_secret_file_without_its_newline() {
        let dir = std::env::temp_dir().join(format!("aiguillage-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), "s3cr3t\n").unwrap();
        let setup = Setup::new("c", &dir);
        let secret = resolve("token", None, Some(Path::new("token")), &setup).unwrap();
        assert_eq!(secret.expose_secret(), "s3cr3t");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_secret_names_both_keys() {
        let setup = Setup::new("c", "/nonexistent");
        let error = resolve("password", None, None, &setup).unwrap_err();
        assert!(matches!(error, ConfigError::MissingSecret { .. }));
        assert!(error.to_string().contains("`password_file`"), "{error}");
        let error = resolve("password", None, Some(Path::new("pw")), &setup).unwrap_err();
        assert_eq!(error.key(), "password_file");
        assert!(error.to_string().contains("/nonexistent/pw"), "{error}");
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = SecretString::from("hunter2".to_owned());
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
