//! The open-file limit: every connection is a file descriptor, and many systems start
//! processes with a soft limit of 1024, below the default `max_connections` plus what the
//! store and the logs need.

/// Descriptors kept for everything but client connections: the listener, database
/// connections, key and log files.
pub const RESERVED_FDS: u64 = 128;

/// Raises this process's soft limit on open files to its hard limit and returns the soft
/// limit now in force (`None`: unlimited, or no such limit on this platform).
pub fn raise_fd_limit() -> std::io::Result<Option<u64>> {
    imp::raise()
}

/// How many connections fit in `fd_limit` descriptors next to [`RESERVED_FDS`].
pub fn connection_capacity(fd_limit: u64) -> u64 {
    fd_limit.saturating_sub(RESERVED_FDS)
}

#[cfg(unix)]
mod imp {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

    pub fn raise() -> std::io::Result<Option<u64>> {
        let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
        if current.is_some() && current != maximum {
            let raised = Rlimit {
                current: maximum,
                maximum,
            };
            // Some systems (macOS) refuse an unlimited soft limit; the old one then stays.
            if setrlimit(Resource::Nofile, raised).is_err() {
                return Ok(current);
            }
        }
        Ok(getrlimit(Resource::Nofile).current)
    }
}

#[cfg(not(unix))]
mod imp {
    pub fn raise() -> std::io::Result<Option<u64>> {
        Ok(None)
    }
}
