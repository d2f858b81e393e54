//! A `text/event-stream` parser (the WHATWG server-sent events format), fed in chunks.
//!
//! Lines end with `\n`, `\r\n` or `\r`; `field: value` lines build an event, a blank line
//! dispatches it, `:` lines are comments. Only `event` and `data` matter here (`id` and
//! `retry` are for `EventSource` reconnection, which the connection driver does itself).
//! Bytes are buffered until a line is complete, so a UTF-8 character or a line split across
//! chunks is fine.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SseEvent {
    /// The `event` field, `message` when absent.
    pub(super) name: String,
    /// The `data` lines, joined with `\n`.
    pub(super) data: String,
}

/// The parser's state between chunks.
#[derive(Debug, Default)]
pub(super) struct EventParser {
    /// Bytes of a line not yet ended.
    line: Vec<u8>,
    /// The last chunk ended with `\r`: a `\n` opening the next one belongs to it.
    after_cr: bool,
    name: Option<String>,
    data: Option<String>,
}

impl EventParser {
    /// Feeds a chunk; returns the events it completed, in order.
    pub(super) fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        for &b in chunk {
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                continue;
            }
            match b {
                b'\r' | b'\n' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.line_done(&line) {
                        out.push(event);
                    }
                }
                _ => self.line.push(b),
            }
        }
        out
    }

    fn line_done(&mut self, line: &[u8]) -> Option<SseEvent> {
        if line.is_empty() {
            let data = self.data.take();
            let name = self.name.take();
            return data.map(|data| SseEvent {
                name: name.unwrap_or_else(|| "message".to_owned()),
                data,
            });
        }
        if line[0] == b':' {
            return None; // a comment: keep-alive
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.name = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, data: &str) -> SseEvent {
        SseEvent {
            name: name.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_comments_and_multiline_data() {
        let mut p = EventParser::default();
        let got = p.push(
            b": keep-alive\n\nevent: footlights-init\ndata: {\"a\":1}\n\ndata: x\ndata:y\n\nid: 3\n\n",
        );
        assert_eq!(
            got,
            [
                event("footlights-init", "{\"a\":1}"),
                event("message", "x\ny")
            ]
        );
    }

    #[test]
    fn chunks_may_split_anything() {
        let stream = "event: message\r\ndata: héllo\r\n\r\nevent: footlights-close\rdata: {}\r\r";
        let whole = EventParser::default().push(stream.as_bytes());
        assert_eq!(
            whole,
            [event("message", "héllo"), event("footlights-close", "{}")]
        );
        for split in 0..stream.len() {
            let mut p = EventParser::default();
            let mut got = p.push(&stream.as_bytes()[..split]);
            got.extend(p.push(&stream.as_bytes()[split..]));
            assert_eq!(got, whole, "split at {split}");
        }
    }

    #[test]
    fn an_event_without_data_is_not_dispatched() {
        let mut p = EventParser::default();
        assert!(p.push(b"event: ping\n\n").is_empty());
        assert_eq!(p.push(b"data\n\n"), [event("message", "")]);
    }
}
