//! The file of a Unix-domain socket a server listens on: made free before the bind (a stale
//! socket left by a server that died is replaced, as gRPC's C-core does) and removed when
//! the listener goes, if it is still the socket that listener bound.
//!
//! Written once here for every runtime adapter; the blocking file calls are local and
//! instant (no network), like the bind itself.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The socket file of one Unix listener. Dropping it removes the file, unless something
/// else replaced it at the path meanwhile (another server that bound the same path).
#[derive(Debug)]
pub struct UnixSocketFile {
    path: PathBuf,
    /// The socket the listener bound, once [`bound`](Self::bound).
    identity: Option<Identity>,
}

impl UnixSocketFile {
    /// Makes `path` free for a bind: nothing there is fine; a socket file nobody accepts on
    /// (connecting is refused) is removed; a socket a server still accepts on, or a file
    /// that is not a socket, is `AddrInUse`, so a second server never steals a live one's
    /// path and no regular file is deleted.
    pub fn claim(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        if path.as_os_str().is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an empty unix socket path",
            ));
        }
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
            Ok(meta) if !meta.file_type().is_socket() => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
            Ok(_) => match std::os::unix::net::UnixStream::connect(&path) {
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!("a server already listens on {}", path.display()),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(&path).or_else(|e| match e.kind() {
                        io::ErrorKind::NotFound => Ok(()),
                        _ => Err(e),
                    })?;
                }
                Err(e) => return Err(e),
            },
        }
        Ok(Self {
            path,
            identity: None,
        })
    }

    /// Notes the socket now bound at the path: it is the file dropping `self` removes.
    pub fn bound(mut self) -> io::Result<Self> {
        self.identity = Some(Identity::of(&std::fs::symlink_metadata(&self.path)?));
        Ok(self)
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Which file a path names: device and inode, and the inode's change time, since a file
/// made after ours was removed may get our inode number again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    ctime: (i64, i64),
}

impl Identity {
    fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

impl Drop for UnixSocketFile {
    fn drop(&mut self) {
        let Some(identity) = self.identity else {
            return;
        };
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|meta| meta.file_type().is_socket() && Identity::of(&meta) == identity);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("anygrpc-unix-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_stale_socket_is_replaced_and_the_bound_one_removed_on_drop() {
        let dir = scratch("stale");
        let path = dir.join("s.sock");
        // A listener that went without removing its file: a stale socket.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let file = UnixSocketFile::claim(&path).unwrap();
        assert!(!path.exists(), "the stale socket is gone");
        let listener = UnixListener::bind(&path).unwrap();
        let file = file.bound().unwrap();
        drop(file);
        assert!(!path.exists(), "dropping removes the socket it bound");
        drop(listener);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_live_socket_or_another_file_is_addr_in_use() {
        let dir = scratch("live");
        let path = dir.join("s.sock");
        let _live = UnixListener::bind(&path).unwrap();
        let err = UnixSocketFile::claim(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
        assert!(path.exists(), "a live socket is left alone");
        let plain = dir.join("plain");
        std::fs::write(&plain, b"data").unwrap();
        let err = UnixSocketFile::claim(&plain).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
        assert_eq!(std::fs::read(&plain).unwrap(), b"data");
        assert_eq!(
            UnixSocketFile::claim("").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_socket_replaced_by_someone_else_is_not_removed() {
        let dir = scratch("replaced");
        let path = dir.join("s.sock");
        let file = UnixSocketFile::claim(&path).unwrap();
        let first = UnixListener::bind(&path).unwrap();
        let file = file.bound().unwrap();
        drop(first);
        std::fs::remove_file(&path).unwrap();
        let _second = UnixListener::bind(&path).unwrap();
        drop(file);
        assert!(path.exists(), "the other server's socket stays");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
