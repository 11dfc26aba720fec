//! The load generator's HTTP/1.1 exchange: a pre-serialized request written in one
//! call, the response head parsed with `httparse`, the body read by `Content-Length`
//! or, from servers that stream their answer (node-webot's replies), chunk by chunk.
//!
//! Why not `hyper`'s client: it runs a connection task beside each caller and hands
//! every request across a channel, so each callback costs two task wake-ups in the
//! generator. On a 2-core machine the generator competes with the gateway and NATS
//! it measures; profiled, the hyper client cost 19 µs of CPU per callback. This
//! exchange does the same work in the slot's own task, as `wrk` does.

use bytes::{Buf as _, Bytes, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Longest response head accepted (the gateway's is under 200 bytes).
const MAX_HEAD: usize = 16 * 1024;
/// Longest response body accepted (a passive reply is a few KB at most).
const MAX_BODY: usize = 1024 * 1024;

/// Why an exchange failed; `reason` is the label counted in the load report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct WireError {
    pub reason: &'static str,
}

const fn fail(reason: &'static str) -> WireError {
    WireError { reason }
}

/// A serialized `POST` with `Host`, `Content-Type: text/xml` and `Content-Length`.
pub fn post_request(host: &str, path_and_query: &str, body: &[u8]) -> Bytes {
    let head = format!(
        "POST {path_and_query} HTTP/1.1\r\nhost: {host}\r\ncontent-type: text/xml\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let mut request = BytesMut::with_capacity(head.len() + body.len());
    request.extend_from_slice(head.as_bytes());
    request.extend_from_slice(body);
    request.freeze()
}

/// One keep-alive connection with one request in flight at a time.
pub struct Connection {
    stream: TcpStream,
    buffer: BytesMut,
    /// The server said `Connection: close`: no further request on this one.
    closing: bool,
}

impl Connection {
    pub async fn open(addr: std::net::SocketAddr) -> Result<Self, WireError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|_| fail("connect"))?;
        let _ = stream.set_nodelay(true);
        Ok(Self {
            stream,
            buffer: BytesMut::with_capacity(4096),
            closing: false,
        })
    }

    /// Whether another request may be sent on this connection.
    pub fn is_reusable(&self) -> bool {
        !self.closing
    }

    /// Sends `request` and returns the response's status and body.
    pub async fn exchange(&mut self, request: &[u8]) -> Result<(u16, Bytes), WireError> {
        self.stream
            .write_all(request)
            .await
            .map_err(|_| fail("connection_error"))?;
        let head = loop {
            if let Some(head) = parse_head(&self.buffer)? {
                break head;
            }
            if self.buffer.len() > MAX_HEAD {
                return Err(fail("response_head_too_large"));
            }
            self.fill().await?;
        };
        self.closing |= head.close;
        if head.chunked {
            self.buffer.advance(head.head_len);
            return Ok((head.status, self.read_chunks().await?));
        }
        while self.buffer.len() < head.head_len + head.body_len {
            self.fill().await?;
        }
        self.buffer.advance(head.head_len);
        Ok((head.status, self.buffer.split_to(head.body_len).freeze()))
    }

    /// A chunked body, up to its last (empty) chunk; trailers are not expected.
    async fn read_chunks(&mut self) -> Result<Bytes, WireError> {
        let mut body = BytesMut::new();
        loop {
            let (size_len, size) = loop {
                match httparse::parse_chunk_size(&self.buffer) {
                    Ok(httparse::Status::Complete((n, size))) => break (n, size),
                    Ok(httparse::Status::Partial) => self.fill().await?,
                    Err(_) => return Err(fail("malformed_response")),
                }
            };
            let size = usize::try_from(size).map_err(|_| fail("response_body_too_large"))?;
            if body.len() + size > MAX_BODY {
                return Err(fail("response_body_too_large"));
            }
            // The chunk's data and its CRLF (after the last chunk: the body's final CRLF).
            while self.buffer.len() < size_len + size + 2 {
                self.fill().await?;
            }
            if &self.buffer[size_len + size..size_len + size + 2] != b"\r\n" {
                return Err(fail("malformed_response"));
            }
            self.buffer.advance(size_len);
            body.extend_from_slice(&self.buffer.split_to(size));
            self.buffer.advance(2);
            if size == 0 {
                return Ok(body.freeze());
            }
        }
    }

    async fn fill(&mut self) -> Result<(), WireError> {
        self.buffer.reserve(4096);
        match self.stream.read_buf(&mut self.buffer).await {
            Ok(0) => Err(fail("connection_closed")),
            Ok(_) => Ok(()),
            Err(_) => Err(fail("connection_error")),
        }
    }
}

/// A complete response head.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    status: u16,
    /// `Connection: close`.
    close: bool,
    head_len: usize,
    body_len: usize,
    /// `Transfer-Encoding: chunked`: `body_len` is unknown.
    chunked: bool,
}

fn parse_head(buffer: &[u8]) -> Result<Option<Head>, WireError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buffer) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(fail("malformed_response")),
    };
    let status = response.code.ok_or(fail("malformed_response"))?;
    let mut body_len = None;
    let mut close = false;
    let mut chunked = false;
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let len = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or(fail("malformed_response"))?;
            body_len = Some(len);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            if !header.value.eq_ignore_ascii_case(b"chunked") {
                return Err(fail("unsupported_transfer_encoding"));
            }
            chunked = true;
        } else if header.name.eq_ignore_ascii_case("connection") {
            close = header.value.eq_ignore_ascii_case(b"close");
        }
    }
    let body_len = body_len.unwrap_or(0);
    if body_len > MAX_BODY {
        return Err(fail("response_body_too_large"));
    }
    Ok(Some(Head {
        status,
        close,
        head_len,
        body_len,
        chunked,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_head_gives_status_and_lengths() {
        let raw =
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 7\r\n\r\nsuccess";
        let head = parse_head(raw).unwrap().unwrap();
        assert_eq!((head.status, head.close, head.body_len), (200, false, 7));
        assert_eq!(&raw[head.head_len..], b"success");
    }

    #[test]
    fn a_partial_head_asks_for_more_and_garbage_is_refused() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-le").unwrap(), None);
        assert_eq!(
            parse_head(b"garbage\r\n\r\n").unwrap_err().reason,
            "malformed_response"
        );
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n")
                .unwrap_err()
                .reason,
            "unsupported_transfer_encoding"
        );
    }

    #[tokio::test]
    async fn a_chunked_body_is_joined_and_the_next_response_follows_it() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await.unwrap();
            // Split mid-chunk, so the reader waits for the rest.
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\n<xm")
                .await
                .unwrap();
            socket.flush().await.unwrap();
            tokio::task::yield_now().await;
            socket
                .write_all(b"l/>\r\n3\r\nabc\r\n0\r\n\r\n")
                .await
                .unwrap();
            let _ = socket.read(&mut buf).await.unwrap();
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\nsuccess")
                .await
                .unwrap();
        });
        let mut connection = Connection::open(addr).await.unwrap();
        let request = post_request("h", "/p", b"body");
        let first = connection.exchange(&request).await.unwrap();
        assert_eq!(first, (200, Bytes::from_static(b"<xml/>abc")));
        let second = connection.exchange(&request).await.unwrap();
        assert_eq!(second, (200, Bytes::from_static(b"success")));
    }

    #[test]
    fn connection_close_is_noticed() {
        let raw = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\ncontent-length: 0\r\n\r\n";
        let head = parse_head(raw).unwrap().unwrap();
        assert_eq!((head.status, head.close, head.body_len), (400, true, 0));
    }

    #[test]
    fn the_request_carries_its_length() {
        let request = post_request("127.0.0.1:8080", "/wechat/a?x=1", b"<xml/>");
        let text = std::str::from_utf8(&request).unwrap();
        assert!(text.starts_with("POST /wechat/a?x=1 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n"));
        assert!(text.ends_with("content-length: 6\r\n\r\n<xml/>"));
    }

    #[tokio::test]
    async fn two_exchanges_share_one_connection_even_when_split_across_reads() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            for answer in ["first", "second"] {
                let mut buf = [0u8; 1024];
                let n = socket.read(&mut buf).await.unwrap();
                seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
                    answer.len()
                );
                // Head and body in separate writes: the reader must wait for the body.
                socket.write_all(response.as_bytes()).await.unwrap();
                socket.flush().await.unwrap();
                tokio::task::yield_now().await;
                socket.write_all(answer.as_bytes()).await.unwrap();
            }
            seen
        });
        let mut connection = Connection::open(addr).await.unwrap();
        let request = post_request("h", "/p", b"body");
        let first = connection.exchange(&request).await.unwrap();
        let second = connection.exchange(&request).await.unwrap();
        assert_eq!(first, (200, Bytes::from_static(b"first")));
        assert_eq!(second, (200, Bytes::from_static(b"second")));
        assert!(connection.is_reusable());
        let seen = server.await.unwrap();
        assert!(seen.iter().all(|r| r.ends_with("\r\n\r\nbody")));
    }
}
