//! memlane's request-response service (`memlane::service`): the parent is
//! a client, the child a server; one round trip is one `call` (a request
//! on the service's request channel, the claim, the response on the
//! client's own channel). Both sides wait as `recv` does (a brief spin,
//! then a sleep), so the row to compare it with is `memlane-block`, the
//! channel ping-pong measured in the same run.

use std::io;
use std::time::{Duration, Instant};

use memlane::service::{service, Client, Request, Server};

use crate::{ChildProc, Job, Link, Transport};

/// The `memlane-rpc` transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rpc;

impl Rpc {
    /// `Some` for `memlane-rpc`.
    pub fn from_name(name: &str) -> Option<Rpc> {
        (name == "memlane-rpc").then_some(Rpc)
    }
}

fn err(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(e)
}

/// How long one call may take before the benchmark fails.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// One side of the request-response transport.
pub enum RpcLink {
    /// The parent: a client; `send` keeps the request, `recv` calls.
    Client {
        /// The client.
        client: Box<Client>,
        /// The request kept by `send`.
        pending: Vec<u8>,
    },
    /// The child: a server; `recv` takes a request, `send` answers it.
    Server {
        /// The server.
        server: Box<Server>,
        /// The request being answered.
        current: Option<Request>,
    },
}

impl Transport for Rpc {
    type L = RpcLink;

    fn parent(
        &self,
        job: &Job,
        spawn: &mut dyn FnMut() -> io::Result<ChildProc>,
    ) -> io::Result<(RpcLink, ChildProc)> {
        let child = spawn()?;
        // The child's server creates the service: wait until it serves.
        let deadline = Instant::now() + CALL_TIMEOUT;
        let client = loop {
            match service(&job.tag)
                .dir(&job.dir)
                .max_message(job.size.max(8))
                .client()
            {
                Ok(c) if c.server_alive() => break c,
                Ok(_) | Err(memlane::ServiceError::NoServer { .. })
                    if Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Ok(_) => return Err(io::Error::other("the benchmark's server never joined")),
                Err(e) => return Err(err(e)),
            }
        };
        Ok((
            RpcLink::Client {
                client: Box::new(client),
                pending: Vec::new(),
            },
            child,
        ))
    }

    fn child(&self, job: &Job) -> io::Result<RpcLink> {
        let server = service(&job.tag)
            .dir(&job.dir)
            .max_message(job.size.max(8))
            .server()
            .map_err(err)?;
        Ok(RpcLink::Server {
            server: Box::new(server),
            current: None,
        })
    }
}

impl Link for RpcLink {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        match self {
            RpcLink::Client { pending, .. } => {
                pending.clear();
                pending.extend_from_slice(msg);
                Ok(())
            }
            RpcLink::Server { server, current } => {
                let req = current
                    .take()
                    .ok_or_else(|| io::Error::other("a response with no request"))?;
                server.respond(&req, msg).map_err(err)
            }
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let got = match self {
            RpcLink::Client { client, pending } => {
                client.call_timeout(pending, CALL_TIMEOUT).map_err(err)?
            }
            RpcLink::Server { server, current } => {
                let req = server.recv().map_err(err)?;
                let payload = req.payload.clone();
                *current = Some(req);
                payload
            }
        };
        let n = got.len().min(buf.len());
        buf[..n].copy_from_slice(&got[..n]);
        Ok(got.len())
    }
}
