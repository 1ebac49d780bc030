//! The systemd readiness protocol (`Type=notify`, sd_notify(3)): the service tells systemd
//! that it is ready once its bus topology is declared and its connectors consume, what it
//! is doing (`STATUS=`), and that it is stopping. Written on std's `UnixDatagram` rather
//! than a dependency: the protocol is one datagram of `KEY=value` lines to the socket
//! named by `$NOTIFY_SOCKET`.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::net::UnixDatagram;

/// Sends `state` (e.g. `"READY=1\nSTATUS=…"`) to systemd when the process runs under a
/// `Type=notify` unit; does nothing otherwise. A failure is logged, never fatal: the
/// gateway works the same without systemd.
pub fn notify(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(error) = send(&socket, state) {
        tracing::warn!(%error, socket = %socket.to_string_lossy(), "cannot notify systemd");
    }
}

/// Sends one datagram to a notification socket: a path, or an abstract name when it
/// starts with `@` (systemd's own convention).
///
/// # Errors
///
/// When the socket cannot be created or the datagram not sent.
pub fn send(socket: &OsStr, state: &str) -> io::Result<()> {
    let sender = UnixDatagram::unbound()?;
    let bytes = socket.as_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt as _;
            let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sender.send_to_addr(state.as_bytes(), &address)?;
            return Ok(());
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = name;
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "abstract socket names exist on Linux only",
            ));
        }
    }
    sender.send_to(state.as_bytes(), socket)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::send;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn a_path_socket_receives_the_state() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).expect("bind");
        send(path.as_os_str(), "READY=1\nSTATUS=prêt").expect("send");
        let mut buffer = [0u8; 256];
        let n = receiver.recv(&mut buffer).expect("receive");
        assert_eq!(&buffer[..n], "READY=1\nSTATUS=prêt".as_bytes());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_abstract_socket_receives_the_state() {
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("aiguillage-test-{}", std::process::id());
        let address =
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("name");
        let receiver = UnixDatagram::bind_addr(&address).expect("bind");
        send(std::ffi::OsStr::new(&format!("@{name}")), "STOPPING=1").expect("send");
        let mut buffer = [0u8; 64];
        let n = receiver.recv(&mut buffer).expect("receive");
        assert_eq!(&buffer[..n], b"STOPPING=1");
    }
}
