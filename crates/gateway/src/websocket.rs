//! Owns serving one GraphQL WebSocket connection (`/graphql/ws`): the client's frames go
//! through async-graphql's protocol handling (graphql-transport-ws and graphql-ws) to the
//! executor, and the answers go back on the socket. Answers that are ready together (a
//! subscriber given several events at once) are written with one flush, i.e. one `send`
//! syscall instead of one each: under the `subscribe` load the per-answer `send` was the
//! largest single cost of the server.

use std::future::Future;
use std::str::FromStr;

use async_graphql::http::{WebSocketProtocols, WsMessage};
use async_graphql::{Data, Executor};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::http::{header, HeaderMap};
use futures_util::{future, FutureExt, SinkExt, StreamExt};

/// Most answers written with one flush.
const MAX_ANSWERS_PER_FLUSH: usize = 64;

/// The first subprotocol in the client's `Sec-WebSocket-Protocol` that async-graphql speaks,
/// if any.
pub fn protocol(headers: &HeaderMap) -> Option<WebSocketProtocols> {
    headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|value| value.to_str().ok())
        .and_then(|protocols| {
            protocols
                .split(',')
                .find_map(|p| WebSocketProtocols::from_str(p.trim()).ok())
        })
}

/// Serves the connection until either side closes it. `on_init` turns the client's
/// `connection_init` payload into the connection's data (or refuses it).
pub async fn serve<E, F, R>(
    socket: WebSocket,
    executor: E,
    protocol: WebSocketProtocols,
    on_init: F,
) where
    E: Executor,
    F: FnOnce(serde_json::Value) -> R + Send + 'static,
    R: Future<Output = async_graphql::Result<Data>> + Send + 'static,
{
    let (mut sink, stream) = socket.split();
    let frames = stream
        .take_while(|frame| future::ready(frame.is_ok()))
        .filter_map(|frame| {
            future::ready(match frame {
                Ok(message @ (Message::Text(_) | Message::Binary(_))) => Some(message.into_data()),
                _ => None,
            })
        });
    let answers = async_graphql::http::WebSocket::new(executor, frames, protocol)
        .on_connection_init(on_init)
        .map(|answer| match answer {
            WsMessage::Text(text) => Message::Text(text.into()),
            WsMessage::Close(code, reason) => Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })),
        });
    futures_util::pin_mut!(answers);
    while let Some(first) = answers.next().await {
        if sink.feed(first).await.is_err() {
            return;
        }
        // Whatever else is ready now goes out with it; `feed` only buffers.
        let mut fed = 1;
        while fed < MAX_ANSWERS_PER_FLUSH {
            match answers.next().now_or_never() {
                Some(Some(next)) => {
                    if sink.feed(next).await.is_err() {
                        return;
                    }
                    fed += 1;
                }
                Some(None) => {
                    let _ = sink.flush().await;
                    return;
                }
                None => break,
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn asking(protocols: Option<&'static str>) -> Option<WebSocketProtocols> {
        let mut headers = HeaderMap::new();
        if let Some(value) = protocols {
            headers.insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(value),
            );
        }
        protocol(&headers)
    }

    #[test]
    fn the_first_subprotocol_spoken_is_chosen() {
        assert_eq!(
            asking(Some("graphql-transport-ws")),
            Some(WebSocketProtocols::GraphQLWS)
        );
        assert_eq!(
            asking(Some("chat, graphql-ws ,graphql-transport-ws")),
            Some(WebSocketProtocols::SubscriptionsTransportWS)
        );
        assert_eq!(asking(Some("chat, mqtt")), None);
        assert_eq!(asking(None), None);
    }
}
