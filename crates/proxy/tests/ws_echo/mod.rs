//! A WebSocket echo server for the proxy's tests.

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// A WebSocket echo server that prefixes its name.
pub async fn ws_echo(name: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
                while let Some(Ok(msg)) = ws.next().await {
                    if let Message::Text(t) = msg
                        && ws.send(Message::text(format!("{name}: {t}"))).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}
