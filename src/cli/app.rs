//! `switchyard app`: the demo's tiny fleet member. Answers every request with its
//! name (`blue-1`), and `/healthz` with `ok`.

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use tokio::net::TcpListener;

/// `app` options.
#[derive(clap::Args)]
pub struct AppArgs {
    /// What it answers with, e.g. `blue-1`.
    #[arg(long)]
    pub name: String,
    /// Where it listens.
    #[arg(long, default_value = "127.0.0.1:9001")]
    pub listen: SocketAddr,
}

/// Runs one app until killed.
pub fn run(args: AppArgs) -> ExitCode {
    super::init_tracing(false);
    let rt = match super::runtime(Some(1)) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(super::IO_FAILURE);
        }
    };
    rt.block_on(async {
        match TcpListener::bind(args.listen).await {
            Ok(l) => {
                tracing::info!(name = %args.name, addr = %args.listen, "app listening");
                serve(l, args.name).await;
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cannot bind {}: {e}", args.listen);
                ExitCode::from(super::IO_FAILURE)
            }
        }
    })
}

/// Serves the app on `listener` forever.
pub async fn serve(listener: TcpListener, name: String) {
    let body = Bytes::from(format!("{name}\n"));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let body = body.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let body = body.clone();
                async move {
                    let resp = if req.uri().path() == "/healthz" {
                        Response::new(Full::new(Bytes::from_static(b"ok\n")))
                    } else {
                        Response::new(Full::new(body))
                    };
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}
