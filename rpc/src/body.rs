//! Reading a response body frame by frame, decoding gzip on the fly, and
//! stopping as soon as it grows past a limit: a body is never buffered beyond
//! `max_response_bytes`, neither on the wire nor after decoding.

use std::io::{self, Write};

use flate2::write::GzDecoder;
use http::HeaderMap;
use http::header::CONTENT_ENCODING;
use http_body_util::BodyExt;
use hyper::body::Body;

use crate::error::BoxError;

/// The most memory reserved up front for a declared `Content-Length`; a
/// longer body grows the buffer as it arrives.
const MAX_PREALLOCATION: usize = 16 * 1024 * 1024;

/// How the body is encoded on the wire (we only ask for gzip).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// No `Content-Encoding`, or `identity`.
    Identity,
    /// `Content-Encoding: gzip` (or the legacy `x-gzip`).
    Gzip,
}

impl Encoding {
    /// The encoding named by the headers; `Err` names one we did not ask for.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Result<Self, String> {
        let Some(value) = headers.get(CONTENT_ENCODING) else {
            return Ok(Encoding::Identity);
        };
        let name = value
            .to_str()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match name.as_str() {
            "" | "identity" => Ok(Encoding::Identity),
            "gzip" | "x-gzip" => Ok(Encoding::Gzip),
            _ => Err(format!("unsupported Content-Encoding {value:?}")),
        }
    }
}

/// A body read up to a limit.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    /// The decoded bytes, at most the limit.
    pub(crate) bytes: Vec<u8>,
    /// Whether the body went on past the limit (then `bytes` is its start).
    pub(crate) over_limit: bool,
}

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The connection failed while reading.
    Transport(BoxError),
    /// The gzip stream was corrupt or truncated; the bytes decoded so far.
    Gzip(io::Error, Vec<u8>),
}

/// Reads `body` up to `limit` bytes, both as received and as decoded; a
/// longer body stops the reading and comes back cut, with `over_limit` set.
pub(crate) async fn collect<B>(
    mut body: B,
    encoding: Encoding,
    limit: u64,
) -> Result<Collected, ReadError>
where
    B: Body<Data = bytes::Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let sink = Sink::new(limit, body.size_hint().lower());
    let mut decoder = match encoding {
        Encoding::Identity => Decoder::Identity(sink),
        Encoding::Gzip => Decoder::Gzip(Box::new(GzDecoder::new(sink))),
    };
    let mut wire_bytes = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame
            .map_err(|error| ReadError::Transport(error.into()))?
            .into_data()
        else {
            continue; // Trailers carry nothing we use.
        };
        wire_bytes = wire_bytes.saturating_add(data.len() as u64);
        let written = decoder.write_all(&data);
        if wire_bytes > limit || decoder.sink().over_limit {
            // Over on the wire while the decoded part still fits is over too.
            return Ok(Collected {
                over_limit: true,
                ..decoder.into_collected()
            });
        }
        if let Err(error) = written {
            return Err(ReadError::Gzip(error, decoder.into_collected().bytes));
        }
    }
    decoder.finish()
}

/// The sink of the body, behind gzip decoding or not.
enum Decoder {
    Identity(Sink),
    Gzip(Box<GzDecoder<Sink>>),
}

impl Decoder {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Decoder::Identity(sink) => sink.write_all(data),
            Decoder::Gzip(decoder) => decoder.write_all(data),
        }
    }

    fn sink(&self) -> &Sink {
        match self {
            Decoder::Identity(sink) => sink,
            Decoder::Gzip(decoder) => decoder.get_ref(),
        }
    }

    /// What was decoded so far, without finishing the stream.
    fn into_collected(self) -> Collected {
        match self {
            Decoder::Identity(sink) => sink.into_collected(),
            Decoder::Gzip(mut decoder) => std::mem::take(decoder.get_mut()).into_collected(),
        }
    }

    /// The whole body, checking the gzip trailer.
    fn finish(self) -> Result<Collected, ReadError> {
        match self {
            Decoder::Identity(sink) => Ok(sink.into_collected()),
            Decoder::Gzip(mut decoder) => {
                let finished = decoder.try_finish();
                let sink = std::mem::take(decoder.get_mut());
                match finished {
                    Err(_) if sink.over_limit => Ok(sink.into_collected()),
                    Err(error) => Err(ReadError::Gzip(error, sink.bytes)),
                    Ok(()) => Ok(sink.into_collected()),
                }
            }
        }
    }
}

/// Decoded bytes, refusing to grow past a limit.
#[derive(Debug, Default)]
struct Sink {
    bytes: Vec<u8>,
    limit: usize,
    over_limit: bool,
}

impl Sink {
    /// A sink for at most `limit` bytes, sized for the `expected` length.
    fn new(limit: u64, expected: u64) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let expected = usize::try_from(expected).unwrap_or(0);
        Sink {
            bytes: Vec::with_capacity(expected.min(limit).min(MAX_PREALLOCATION)),
            limit,
            over_limit: false,
        }
    }

    fn into_collected(self) -> Collected {
        Collected {
            bytes: self.bytes,
            over_limit: self.over_limit,
        }
    }
}

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.limit.saturating_sub(self.bytes.len());
        if data.len() > room {
            self.bytes.extend_from_slice(&data[..room]);
            self.over_limit = true;
            return Err(io::Error::other("body over the size limit"));
        }
        self.bytes.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use flate2::write::GzEncoder;
    use http_body_util::StreamBody;
    use hyper::body::Frame;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// A body in chunks, of undeclared length (as with chunked encoding).
    type Chunks = StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Chunk>>>;
    type Chunk = Result<Frame<Bytes>, Infallible>;

    /// `data` in frames of `chunk` bytes.
    fn chunks(data: &[u8], chunk: usize) -> Chunks {
        let frames: Vec<Chunk> = data
            .chunks(chunk)
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    fn gzip(data: &[u8]) -> io::Result<Vec<u8>> {
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data)?;
        encoder.finish()
    }

    async fn read(body: Chunks, encoding: Encoding, limit: u64) -> Result<Collected, String> {
        collect(body, encoding, limit)
            .await
            .map_err(|error| format!("{error:?}"))
    }

    #[tokio::test]
    async fn reads_a_chunked_body_up_to_the_limit() -> TestResult {
        let data = [7u8; 1000];
        let whole = read(chunks(&data, 64), Encoding::Identity, 1000).await?;
        assert_eq!((whole.bytes.len(), whole.over_limit), (1000, false));
        let cut = read(chunks(&data, 64), Encoding::Identity, 999).await?;
        assert_eq!((cut.bytes.len(), cut.over_limit), (999, true));
        Ok(())
    }

    #[tokio::test]
    async fn a_whole_body_over_the_limit_keeps_its_start() -> TestResult {
        let body = http_body_util::Full::new(Bytes::from_static(b"0123456789"));
        let cut = collect(body, Encoding::Identity, 4)
            .await
            .map_err(|error| format!("{error:?}"))?;
        assert_eq!((cut.bytes.as_slice(), cut.over_limit), (&b"0123"[..], true));
        Ok(())
    }

    #[tokio::test]
    async fn decodes_gzip_in_chunks() -> TestResult {
        let data: Vec<u8> = (0..50_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let packed = gzip(&data)?;
        let whole = read(chunks(&packed, 100), Encoding::Gzip, 200_000).await?;
        assert!(!whole.over_limit);
        assert_eq!(whole.bytes, data);
        Ok(())
    }

    #[tokio::test]
    async fn stops_decoding_at_the_limit() -> TestResult {
        let packed = gzip(&[b' '; 100_000])?;
        assert!(packed.len() < 1000);
        let cut = read(chunks(&packed, 100), Encoding::Gzip, 50_000).await?;
        assert_eq!((cut.bytes.len(), cut.over_limit), (50_000, true));
        Ok(())
    }

    #[tokio::test]
    async fn stops_at_the_limit_on_the_wire_too() -> TestResult {
        // Incompressible bytes: the gzip stream is longer than what it decodes to.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let data: Vec<u8> = (0..1000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
        let packed = gzip(&data)?;
        assert!(packed.len() > 1010, "{}", packed.len());
        let cut = read(chunks(&packed, 100), Encoding::Gzip, 1010).await?;
        assert!(cut.over_limit);
        assert!(cut.bytes.len() <= 1000);
        Ok(())
    }

    #[tokio::test]
    async fn rejects_corrupt_and_truncated_gzip() -> TestResult {
        let corrupt = read(chunks(b"not gzip at all", 4), Encoding::Gzip, 1000).await;
        assert!(corrupt.is_err(), "{corrupt:?}");
        let packed = gzip(b"{\"result\": 1}")?;
        let truncated = &packed[..packed.len() - 4];
        let cut = read(chunks(truncated, 4), Encoding::Gzip, 1000).await;
        assert!(cut.is_err(), "{cut:?}");
        Ok(())
    }

    #[test]
    fn knows_the_encodings_it_asked_for() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_ENCODING, http::HeaderValue::from_static(value));
            Encoding::from_headers(&headers)
        };
        assert_eq!(
            Encoding::from_headers(&HeaderMap::new()),
            Ok(Encoding::Identity)
        );
        assert_eq!(with("identity"), Ok(Encoding::Identity));
        assert_eq!(with("gzip"), Ok(Encoding::Gzip));
        assert_eq!(with("GZIP"), Ok(Encoding::Gzip));
        assert!(with("br").is_err());
    }
}
