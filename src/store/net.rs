//! `TCP_NODELAY` on the database connections.
//!
//! sqlx 0.9.0 no longer sets it on the TCP sockets it opens (transact-rs/sqlx#4335,
//! fixed upstream in #4336 but not released as of sqlx 0.9.0), and it gives no access to
//! the socket. Without it, a message PostgreSQL needs before it answers (the data of a
//! COPY, the Sync after a Bind/Execute sent as two writes) can sit in the kernel until
//! the server's delayed ACK, about 40 ms on Linux, per round trip.
//!
//! The pool's `after_connect` hook therefore finds the process's TCP sockets whose peer
//! is the database and sets the option on them, through `/proc/self/fd` (Linux; on other
//! systems this does nothing). Setting it on a socket that already has it, or on another
//! connection to the same server, is harmless. Remove this module once sqlx ships the
//! fix.

use std::net::SocketAddr;

/// Sets `TCP_NODELAY` on every TCP socket of this process connected to one of `peers`;
/// returns how many it found.
pub fn set_nodelay_towards(peers: &[SocketAddr]) -> usize {
    #[cfg(target_os = "linux")]
    {
        use nix::sys::socket::{SockaddrStorage, getpeername, setsockopt, sockopt};
        use std::os::fd::{BorrowedFd, RawFd};
        let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
            return 0;
        };
        let mut found = 0;
        for entry in entries.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<RawFd>().ok())
            else {
                continue;
            };
            let Ok(peer) = getpeername::<SockaddrStorage>(fd) else {
                continue;
            };
            let addr = match (peer.as_sockaddr_in(), peer.as_sockaddr_in6()) {
                (Some(v4), _) => SocketAddr::from(std::net::SocketAddrV4::from(*v4)),
                (_, Some(v6)) => SocketAddr::from(std::net::SocketAddrV6::from(*v6)),
                _ => continue,
            };
            if !peers.contains(&addr) {
                continue;
            }
            // SAFETY: the descriptor is only borrowed for the one setsockopt call below. If
            // another thread closed it since getpeername, the call fails with EBADF, or sets
            // TCP_NODELAY on whatever socket now has that number: harmless either way.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            if setsockopt(&fd, sockopt::TcpNoDelay, &true).is_ok() {
                found += 1;
            }
        }
        found
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = peers;
        0
    }
}

/// Whether the TCP socket of this process whose local port is `local_port` has
/// `TCP_NODELAY` set (`None` when there is no such socket); for tests.
pub fn nodelay_of_local_port(local_port: u16) -> Option<bool> {
    #[cfg(target_os = "linux")]
    {
        use nix::sys::socket::{SockaddrStorage, getsockname, getsockopt, sockopt};
        use std::os::fd::{BorrowedFd, RawFd};
        for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<RawFd>().ok())
            else {
                continue;
            };
            let Ok(local) = getsockname::<SockaddrStorage>(fd) else {
                continue;
            };
            let port = local
                .as_sockaddr_in()
                .map(|a| a.port())
                .or_else(|| local.as_sockaddr_in6().map(|a| a.port()));
            if port == Some(local_port) {
                // SAFETY: as in set_nodelay_towards: borrowed for one getsockopt call.
                let fd = unsafe { BorrowedFd::borrow_raw(fd) };
                return getsockopt(&fd, sockopt::TcpNoDelay).ok();
            }
        }
        None
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = local_port;
        None
    }
}
