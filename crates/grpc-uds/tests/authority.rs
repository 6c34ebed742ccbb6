//! What a tonic server on our sockets does with the HTTP/2 `:authority`
//! older clients send over unix sockets (kubelet before 1.26, `csc`,
//! grpc-python): the socket path. h2 refuses such a request before any
//! tower layer sees it, resetting the stream with PROTOCOL_ERROR, and has
//! no option to allow it (COMPATIBILITY.md, "Operator notes" in the
//! README). This test pins that behaviour with hand-written HTTP/2 frames,
//! so a future h2 that accepts the request is noticed.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PROTOCOL_ERROR: u32 = 0x1;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.extend([kind, flags]);
    f.extend(stream.to_be_bytes());
    f.extend(payload);
    f
}

/// An HPACK string literal without Huffman coding (all ours are short).
fn literal(s: &str) -> Vec<u8> {
    assert!(s.len() < 127);
    let mut out = vec![s.len() as u8];
    out.extend(s.as_bytes());
    out
}

/// A unary gRPC request: HEADERS (no dynamic table use) then an empty
/// message with END_STREAM.
fn request(stream: u32, authority: Option<&str>) -> Vec<u8> {
    let mut block = vec![0x83, 0x86]; // :method POST, :scheme http (static)
    block.push(0x04); // :path, literal without indexing, static name 4
    block.extend(literal("/grpc.health.v1.Health/Check"));
    if let Some(a) = authority {
        block.push(0x01); // :authority, static name 1
        block.extend(literal(a));
    }
    block.extend([0x0f, 0x10]); // content-type, static name 31
    block.extend(literal("application/grpc"));
    block.push(0x00); // te: trailers, new name
    block.extend(literal("te"));
    block.extend(literal("trailers"));
    let mut out = frame(HEADERS, 0x4, stream, &block);
    out.extend(frame(DATA, 0x1, stream, &[0, 0, 0, 0, 0]));
    out
}

/// What the server answered on a stream: its first HEADERS frame, or the
/// error code of a RST_STREAM.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Served,
    Reset(u32),
}

async fn answers(conn: &mut UnixStream, streams: &[u32]) -> Vec<(u32, Answer)> {
    let mut got = Vec::new();
    while got.len() < streams.len() {
        let mut head = [0u8; 9];
        conn.read_exact(&mut head).await.expect("frame header");
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        conn.read_exact(&mut payload).await.expect("frame payload");
        if kind == SETTINGS && flags & 0x1 == 0 {
            conn.write_all(&frame(SETTINGS, 0x1, 0, &[]))
                .await
                .expect("ack");
        }
        let answer = match kind {
            HEADERS => Answer::Served,
            RST_STREAM => Answer::Reset(u32::from_be_bytes(payload[..4].try_into().expect("code"))),
            _ => continue,
        };
        if streams.contains(&stream) && !got.iter().any(|(s, _)| *s == stream) {
            got.push((stream, answer));
        }
    }
    got.sort_by_key(|(s, _)| *s);
    got
}

#[tokio::test]
async fn socket_path_authority_is_reset_and_localhost_is_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("csi.sock");
    let listener = secrets_store_grpc_uds::bind(&socket).expect("bind");
    // No services: a served request gets HEADERS with grpc-status 12.
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_routes(tonic::service::Routes::default())
            .serve_with_incoming(secrets_store_grpc_uds::incoming(listener)),
    );

    let mut conn = UnixStream::connect(&socket).await.expect("connect");
    let mut out = PREFACE.to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    out.extend(request(
        1,
        Some("/var/lib/kubelet/plugins/csi-secrets-store/csi.sock"),
    ));
    out.extend(request(3, Some("localhost")));
    out.extend(request(5, None));
    conn.write_all(&out).await.expect("write");

    let got = tokio::time::timeout(Duration::from_secs(20), answers(&mut conn, &[1, 3, 5]))
        .await
        .expect("the server answers every stream");
    assert_eq!(
        got,
        [
            (1, Answer::Reset(PROTOCOL_ERROR)),
            (3, Answer::Served),
            (5, Answer::Served),
        ],
        "h2 changed how it treats a socket-path :authority: update COMPATIBILITY.md and the README"
    );
    server.abort();
}
