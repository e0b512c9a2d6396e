//! An in-process proxy on `127.0.0.1:0` serving a config given as text.

use std::net::SocketAddr;
use std::path::Path;
use switchyard_config::Config;
use switchyard_proxy::{Router, RoutesPublisher, RoutingTable, ServerOptions};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Parses config text, panicking with every problem if it is invalid.
pub fn config_from(text: &str) -> Config {
    match switchyard_config::parse(text, Path::new("test.toml")) {
        Ok(c) => c,
        Err(e) => panic!("test config invalid:\n{e}"),
    }
}

/// A running proxy and the publisher that changes its routes.
pub struct TestProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The write side of its snapshot.
    pub publisher: RoutesPublisher,
    /// The read side.
    pub router: Router,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl TestProxy {
    /// Starts a proxy serving `config`.
    pub async fn start(config: &Config) -> TestProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (publisher, router) = switchyard_proxy::channel(RoutingTable::build(config, None, 1));
        let (stop, stopped) = oneshot::channel();
        let opts = ServerOptions::from_listener(&config.listener);
        let r = router.clone();
        let task = tokio::spawn(async move {
            switchyard_proxy::serve(listener, r, opts, async {
                let _ = stopped.await;
            })
            .await;
        });
        TestProxy { addr, publisher, router, stop: Some(stop), task }
    }

    /// Publishes a table built from `config`, keeping backends' state.
    pub fn apply(&self, config: &Config) {
        let current = self.publisher.current();
        self.publisher.publish(RoutingTable::build(config, Some(&current), current.generation() + 1));
    }

    /// Stops accepting and waits until in-flight requests are done.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
    }
}
