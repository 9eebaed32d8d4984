//! Owns the subscription side: a minimal graphql-transport-ws client that
//! authenticates in `connection_init`, subscribes once and hands every `next`
//! payload to the caller.

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// An open subscription.
pub struct Subscription {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Subscription {
    /// Connects to `base`'s `/graphql/ws`, authenticates with `token` and
    /// starts `query`.
    pub async fn start(
        base: &str,
        token: &str,
        query: &str,
        variables: Value,
    ) -> anyhow::Result<Subscription> {
        let url = format!(
            "{}/graphql/ws",
            base.trim_end_matches('/').replacen("http", "ws", 1)
        );
        let mut request = url.as_str().into_client_request()?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        // A small read buffer: tungstenite zero-fills its free part on every read, which at
        // the default 128 KiB costs the load tool CPU it shares with the server.
        let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
        let (mut socket, _) =
            tokio_tungstenite::connect_async_with_config(request, Some(config), true)
                .await
                .context("websocket connect")?;
        let init = json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}});
        socket.send(Message::Text(init.to_string().into())).await?;
        loop {
            let message = socket
                .next()
                .await
                .ok_or_else(|| anyhow!("closed before ack"))??;
            if let Message::Text(text) = message {
                let value: Value = serde_json::from_str(&text)?;
                match value.get("type").and_then(Value::as_str) {
                    Some("connection_ack") => break,
                    Some("ping") => {
                        socket
                            .send(Message::Text(json!({"type": "pong"}).to_string().into()))
                            .await?;
                    }
                    other => bail!("unexpected message before ack: {other:?}"),
                }
            }
        }
        let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}});
        socket
            .send(Message::Text(subscribe.to_string().into()))
            .await?;
        Ok(Subscription { socket })
    }

    /// The next `data` payload; `None` when the subscription ends.
    pub async fn next(&mut self) -> Option<anyhow::Result<Value>> {
        loop {
            let message = match self.socket.next().await? {
                Ok(m) => m,
                Err(e) => return Some(Err(e.into())),
            };
            let text = match message {
                Message::Text(text) => text,
                Message::Close(_) => return None,
                _ => continue,
            };
            let value: Value = match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(e) => return Some(Err(e.into())),
            };
            match value.get("type").and_then(Value::as_str) {
                Some("next") => {
                    if let Some(errors) = value.pointer("/payload/errors") {
                        return Some(Err(anyhow!("subscription error: {errors}")));
                    }
                    return Some(Ok(value
                        .pointer("/payload/data")
                        .cloned()
                        .unwrap_or(Value::Null)));
                }
                Some("ping") => {
                    let pong = json!({"type": "pong"}).to_string();
                    if let Err(e) = self.socket.send(Message::Text(pong.into())).await {
                        return Some(Err(e.into()));
                    }
                }
                Some("complete") => return None,
                Some("error") => return Some(Err(anyhow!("subscription refused: {value}"))),
                _ => {}
            }
        }
    }
}

/// Unix milliseconds of the API's `DateTime` text (`2024-05-01T09:30:00.123Z`).
pub fn parse_millis(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 24 || b[4] != b'-' || b[10] != b'T' || b[19] != b'.' || b[23] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| -> Option<i64> { text.get(r)?.parse().ok() };
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (h, min, s, ms) = (n(11..13)?, n(14..16)?, n(17..19)?, n(20..23)?);
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + min) * 60_000 + s * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::parse_millis;

    #[test]
    fn parses_the_api_datetime() {
        assert_eq!(parse_millis("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(
            parse_millis("2024-05-01T09:30:00.123Z"),
            Some(1_714_555_800_123)
        );
        assert_eq!(parse_millis("2024-05-01T09:30:00Z"), None);
    }
}
