//! A private `redis-server` per test: started on a free port, killed with
//! SIGKILL on demand (or on drop), restartable on the same port.
//!
//! Readiness is read from the server's own log ("Ready to accept
//! connections"), so starting never sleeps.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().unwrap().port()
}

impl RedisServer {
    /// Starts a server on a free port.
    pub fn start() -> Self {
        let mut server = Self {
            port: free_port(),
            child: None,
        };
        server.spawn();
        server
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL, then reap: when this returns the process is gone and its
    /// sockets are closed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a fresh (empty) server on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn spawn(&mut self) {
        let port = self.port.to_string();
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut log = Vec::new();
        let ready = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    let ready = line.contains("Ready to accept connections");
                    log.push(line);
                    if ready {
                        break true;
                    }
                }
                // EOF: the server exited (port taken, bad flag).
                _ => break false,
            }
        };
        if !ready {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "redis-server on port {port} did not start:\n{}",
                log.join("\n")
            );
        }
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        self.child = Some(child);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
