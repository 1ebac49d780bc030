//! A real OpenSSH server for the SFTP tests, started by the test itself: on a free port of
//! 127.0.0.1, with a host key and a client key generated for the test, the current user
//! (root in CI) logging in with that key only, and `internal-sftp`. Debian's
//! `openssh-server` (`.ci/run` installs it when `sshd` is missing).
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `sshd`, stopped (killed) when dropped.
pub struct Sshd {
    child: Option<Child>,
    /// A throwaway system user with a password, when password login is tested.
    password_user: Option<(String, String)>,
    /// The server's files: keys, configuration, log, and `drop/`.
    pub dir: tempfile::TempDir,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

fn sshd_binary() -> PathBuf {
    for candidate in ["/usr/sbin/sshd", "/usr/local/sbin/sshd"] {
        if Path::new(candidate).is_file() {
            return PathBuf::from(candidate);
        }
    }
    panic!("sshd is not installed: apt-get install -y openssh-server (.ci/run installs it)");
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "aiguillage-test",
            "-f",
        ])
        .arg(path)
        .status()
        .expect("ssh-keygen (apt-get install -y openssh-client)");
    assert!(status.success(), "ssh-keygen failed");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

fn current_user() -> String {
    let output = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

impl Sshd {
    /// Generates the keys and starts the server; waits until it accepts connections.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        keygen(&dir.path().join("host_key"));
        keygen(&dir.path().join("client_key"));
        std::fs::copy(
            dir.path().join("client_key.pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("drop")).unwrap();
        // Debian's sshd refuses to start without its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = free_port();
        let mut sshd = Self {
            child: None,
            password_user: None,
            dir,
            port,
        };
        sshd.launch();
        sshd
    }

    /// Like [`Sshd::start`], with password login for a throwaway system user (created
    /// with `useradd`, removed when dropped; the tests run as root) who owns `drop/`.
    /// Returns the server, the user and the password.
    pub fn start_with_password_user() -> (Self, String, String) {
        let mut sshd = Self::start();
        sshd.stop();
        let user = format!("aigtest{}", sshd.port);
        let password = format!("pw-{}-{}", std::process::id(), sshd.port);
        // A user left behind by a test that was killed, on the same port by chance.
        let _ = Command::new("userdel")
            .arg(&user)
            .stderr(Stdio::null())
            .status();
        let status = Command::new("useradd")
            .args(["-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", &user])
            .status()
            .expect("useradd (the SFTP password test runs as root)");
        assert!(
            status.success(),
            "useradd {user} failed (run the tests as root)"
        );
        sshd.password_user = Some((user.clone(), password.clone()));
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .expect("chpasswd");
        {
            use std::io::Write as _;
            let stdin = chpasswd.stdin.as_mut().unwrap();
            writeln!(stdin, "{user}:{password}").unwrap();
        }
        assert!(chpasswd.wait().unwrap().success(), "chpasswd failed");
        // The user must reach drop/ (tempdir is 0700) and write in it.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(sshd.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let status = Command::new("chown")
            .arg(&user)
            .arg(sshd.drop_dir())
            .status()
            .unwrap();
        assert!(status.success());
        sshd.launch();
        (sshd, user, password)
    }

    fn launch(&mut self) {
        let d = self.dir.path().display();
        let config =
            format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nPubkeyAuthentication yes\n\
             PasswordAuthentication {password}\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n\
             Subsystem sftp internal-sftp\nLogLevel VERBOSE\n",
            port = self.port,
            password = if self.password_user.is_some() { "yes" } else { "no" },
        );
        let config_path = self.dir.path().join("sshd_config");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(self.dir.path().join("sshd.log")).unwrap();
        let child = Command::new(sshd_binary())
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("sshd stopped at start ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (the port stays free for [`Sshd::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same keys.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// The user the tests log in as.
    pub fn user(&self) -> String {
        current_user()
    }

    /// The client's private key file.
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// The directory files are dropped into (absolute path on the server).
    pub fn drop_dir(&self) -> PathBuf {
        self.dir.path().join("drop")
    }

    /// Writes a known_hosts file holding the server's real host key; returns its path.
    pub fn known_hosts(&self) -> PathBuf {
        let key = std::fs::read_to_string(self.dir.path().join("host_key.pub")).unwrap();
        let path = self.dir.path().join("known_hosts");
        std::fs::write(&path, format!("[127.0.0.1]:{} {}", self.port, key)).unwrap();
        path
    }

    /// Writes a known_hosts file recording another ed25519 key for this server.
    pub fn wrong_known_hosts(&self) -> PathBuf {
        let other = self.dir.path().join("other_key");
        if !other.exists() {
            keygen(&other);
        }
        let key = std::fs::read_to_string(self.dir.path().join("other_key.pub")).unwrap();
        let path = self.dir.path().join("wrong_known_hosts");
        std::fs::write(&path, format!("[127.0.0.1]:{} {}", self.port, key)).unwrap();
        path
    }

    /// The `sftp` table of a connector for this server, with `known_hosts`.
    pub fn sftp_table(&self, known_hosts: &Path) -> serde_json::Value {
        serde_json::json!({
            "host": "127.0.0.1",
            "port": self.port,
            "user": self.user(),
            "private_key_file": self.client_key(),
            "known_hosts": known_hosts,
            "timeout": "10s",
        })
    }
}

impl Sshd {
    /// A connector of kind `C` (instance `instance`) writing into this server's drop
    /// directory over SFTP (`config` with its `directory` and `sftp` keys set), whose
    /// health check passed.
    #[allow(dead_code)]
    pub async fn connector<C: aiguillage_connector::ConnectorConfig>(
        &self,
        mut config: serde_json::Value,
        instance: &str,
    ) -> std::sync::Arc<dyn aiguillage_connector::Connector> {
        config["directory"] = serde_json::json!(self.drop_dir());
        config["sftp"] = self.sftp_table(&self.known_hosts());
        let setup = aiguillage_connector::Setup::new(instance, "/nonexistent-config-dir");
        let connector = aiguillage_connector::ConnectorKind::of::<C>()
            .build(config, &setup)
            .unwrap_or_else(|error| panic!("{error}"));
        connector
            .health()
            .await
            .unwrap_or_else(|e| panic!("{}\n{}", e.report(), self.log()));
        connector
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
        if let Some((user, _)) = self.password_user.take() {
            let _ = Command::new("userdel").arg(&user).status();
        }
    }
}
