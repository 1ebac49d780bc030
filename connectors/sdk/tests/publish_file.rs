//! `Transport::publish_file` into a local directory: a 50 MiB file is published without
//! being held in memory, a republication finds it, other bytes under its name are refused,
//! and the journal remembers a file the software took away.

use std::io::Write;
use std::path::Path;

use aiguillage_connector::transport::{LocalDirectory, Published, Transport};

const SIZE: usize = 50 * 1024 * 1024;

/// Writes `size` bytes of a scrambled sequence in 1 MiB chunks (never the whole file in
/// memory); `last` replaces the very last byte, to make a file that differs only there.
fn write_file(path: &Path, size: usize, last: Option<u8>) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut chunk = vec![0u8; 1024 * 1024];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        for byte in &mut chunk[..n] {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = (state >> 32) as u8;
        }
        left -= n;
        if left == 0 {
            if let Some(last) = last {
                chunk[n - 1] = last;
            }
        }
        file.write_all(&chunk[..n]).unwrap();
    }
    file.flush().unwrap();
}

fn same_content(a: &Path, b: &Path) -> bool {
    use std::io::Read;
    let (mut a, mut b) = (
        std::fs::File::open(a).unwrap(),
        std::fs::File::open(b).unwrap(),
    );
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = a.read(&mut x).unwrap();
        let m = b.read(&mut y).unwrap();
        if n != m || x[..n] != y[..m] {
            return false;
        }
        if n == 0 {
            return true;
        }
    }
}

fn last_byte(path: &Path) -> u8 {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).unwrap();
    file.seek(SeekFrom::End(-1)).unwrap();
    let mut byte = [0u8];
    file.read_exact(&mut byte).unwrap();
    byte[0]
}

/// The process's peak resident memory (`VmHWM`), in bytes.
fn peak_memory() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

fn names(directory: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(directory)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_large_file_is_published_in_chunks_once_and_never_replaced() {
    let source_dir = tempfile::tempdir().unwrap();
    let source = source_dir.path().join("package.zip");
    write_file(&source, SIZE, None);
    let drop_dir = tempfile::tempdir().unwrap();
    let transport = LocalDirectory::open(drop_dir.path().to_path_buf()).unwrap();

    let before = peak_memory();
    let outcome = transport
        .publish_file("dossiers/44043-DP-3f9a1c0b7e2d.zip", &source)
        .await
        .unwrap();
    let grown = peak_memory().saturating_sub(before);
    assert_eq!(outcome, Published::Written);
    let target = drop_dir.path().join("dossiers/44043-DP-3f9a1c0b7e2d.zip");
    assert!(same_content(&source, &target));
    assert!(
        grown < 16 * 1024 * 1024,
        "publishing 50 MiB grew the peak memory by {grown} bytes"
    );
    eprintln!("peak memory growth while publishing 50 MiB: {grown} bytes");

    // A redelivery finds the file.
    assert_eq!(
        transport
            .publish_file("dossiers/44043-DP-3f9a1c0b7e2d.zip", &source)
            .await
            .unwrap(),
        Published::AlreadyThere
    );
    // The same size with one byte changed (the last) is refused for good.
    let other = source_dir.path().join("other.zip");
    write_file(&other, SIZE, Some(0xA5 ^ last_byte(&source)));
    let error = transport
        .publish_file("dossiers/44043-DP-3f9a1c0b7e2d.zip", &other)
        .await
        .unwrap_err();
    assert!(error.is_permanent(), "{error}");
    assert!(
        error.to_string().contains("autre contenu")
            || error.to_string().contains("contenu différent"),
        "{error}"
    );
    assert!(
        same_content(&source, &target),
        "the published file is untouched"
    );
    // No temporary file is left behind.
    assert_eq!(
        names(&drop_dir.path().join("dossiers")),
        ["44043-DP-3f9a1c0b7e2d.zip"]
    );
    // publish_file and publish agree on what is the same file.
    let small = source_dir.path().join("small.json");
    std::fs::write(&small, b"{}\n").unwrap();
    assert_eq!(
        transport.publish("a.json", b"{}\n".to_vec()).await.unwrap(),
        Published::Written
    );
    assert_eq!(
        transport.publish_file("a.json", &small).await.unwrap(),
        Published::AlreadyThere
    );
}

#[tokio::test]
async fn the_journal_remembers_a_file_taken_away() {
    let source_dir = tempfile::tempdir().unwrap();
    let source = source_dir.path().join("package.zip");
    write_file(&source, 3 * 1024 * 1024 + 17, None);
    let drop_dir = tempfile::tempdir().unwrap();
    let transport = LocalDirectory::open(drop_dir.path().to_path_buf())
        .unwrap()
        .with_journal();
    assert_eq!(
        transport.publish_file("p.zip", &source).await.unwrap(),
        Published::Written
    );
    // The instruction service imports the package and removes it.
    std::fs::remove_file(drop_dir.path().join("p.zip")).unwrap();
    assert_eq!(
        transport.publish_file("p.zip", &source).await.unwrap(),
        Published::AlreadyThere
    );
    assert!(!drop_dir.path().join("p.zip").exists(), "not written again");
    let other = source_dir.path().join("other.zip");
    write_file(&other, 1000, None);
    let error = transport.publish_file("p.zip", &other).await.unwrap_err();
    assert!(error.is_permanent(), "{error}");
    // The journal entry is the one publish() writes: the same file by publish() is found.
    let bytes = std::fs::read(&source).unwrap();
    assert_eq!(
        transport.publish("p.zip", bytes).await.unwrap(),
        Published::AlreadyThere
    );
}

#[tokio::test]
async fn a_missing_source_is_transient_and_an_unsafe_name_permanent() {
    let drop_dir = tempfile::tempdir().unwrap();
    let transport = LocalDirectory::open(drop_dir.path().to_path_buf()).unwrap();
    let error = transport
        .publish_file("a.zip", Path::new("/nonexistent/package.zip"))
        .await
        .unwrap_err();
    assert!(!error.is_permanent(), "{error}");
    assert!(
        error.to_string().contains("/nonexistent/package.zip"),
        "{error}"
    );
    let source = drop_dir.path().join(".src");
    std::fs::write(&source, b"x").unwrap();
    let error = transport
        .publish_file("../a.zip", &source)
        .await
        .unwrap_err();
    assert!(error.is_permanent(), "{error}");
}
