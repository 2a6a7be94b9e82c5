//! The file inside a `multipart/form-data` body (RFC 7578, RFC 2046 §5.1), streamed: a web
//! interface uploads firmware as a form (Dahua `upgrader.cgi?action=uploadFirmware`, Hikvision's
//! and Axis's pages), and the image's hash must be the file's, not the form's. Bytes go through
//! in one pass with a carry of one delimiter's length, so nothing is buffered but headers.

use memchr::memmem;

/// Longest part header block read; a longer one ends the extraction.
const MAX_PART_HEADERS: usize = 8 * 1024;

/// The `boundary` parameter of a `multipart/*` Content-Type value (quoted or not, 1 to 70
/// characters as RFC 2046 allows).
pub fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let media = params.next()?.trim();
    if !media.to_ascii_lowercase().starts_with("multipart/") {
        return None;
    }
    params.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = v.trim().trim_matches('"');
        (1..=70).contains(&v.len()).then(|| v.to_string())
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first delimiter.
    Preamble,
    /// After a delimiter line: the rest of its line, then the part's headers.
    Headers,
    /// Inside a part's content; `true` when it is the file being extracted.
    Content(bool),
    Done,
}

/// Extracts the first part that carries a file (`filename=` in its Content-Disposition), or
/// the first part when none says so before it ends.
#[derive(Debug)]
pub struct FileExtractor {
    /// `\r\n--boundary`: the body is read as if it started with a line break, so the first
    /// delimiter matches too.
    delimiter: Vec<u8>,
    state: State,
    carry: Vec<u8>,
    /// The file part's name, when its headers named it.
    pub filename: Option<String>,
    /// The file part's own Content-Type.
    pub content_type: Option<String>,
    /// Whether a part was chosen (bytes were or will be emitted).
    pub found: bool,
    parts: usize,
}

impl FileExtractor {
    pub fn new(boundary: &str) -> Self {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        Self {
            delimiter,
            state: State::Preamble,
            carry: b"\r\n".to_vec(),
            filename: None,
            content_type: None,
            found: false,
            parts: 0,
        }
    }

    /// Whether the file part has ended (or the body cannot be read as multipart).
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// Feeds the body's next bytes; the file's bytes go to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut dyn FnMut(&[u8])) {
        if self.state == State::Done || input.is_empty() {
            return;
        }
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(input);
        let mut at = 0;
        loop {
            let rest = &buf[at..];
            match self.state {
                State::Done => break,
                State::Preamble | State::Content(_) => {
                    let emit = self.state == State::Content(true);
                    match memmem::find(rest, &self.delimiter) {
                        Some(i) => {
                            if emit {
                                out(&rest[..i]);
                                self.state = State::Done;
                                break;
                            }
                            at += i + self.delimiter.len();
                            self.state = State::Headers;
                        }
                        None => {
                            // Keep what could be the start of a delimiter.
                            let keep = rest.len().min(self.delimiter.len() - 1);
                            let (pass, tail) = rest.split_at(rest.len() - keep);
                            if emit {
                                out(pass);
                            }
                            self.carry = tail.to_vec();
                            return;
                        }
                    }
                }
                State::Headers => {
                    // `--` after a delimiter closes the body; otherwise the line ends and the
                    // part's headers follow, up to a blank line.
                    if rest.len() < 2 {
                        self.carry = rest.to_vec();
                        return;
                    }
                    if rest.starts_with(b"--") {
                        self.state = State::Done;
                        break;
                    }
                    let Some(end) = memmem::find(rest, b"\r\n\r\n") else {
                        if rest.len() > MAX_PART_HEADERS {
                            self.state = State::Done;
                            break;
                        }
                        self.carry = rest.to_vec();
                        return;
                    };
                    let headers = String::from_utf8_lossy(&rest[..end]).into_owned();
                    at += end + 4;
                    self.parts += 1;
                    let filename = part_filename(&headers);
                    let take = filename.is_some();
                    if take {
                        self.filename = filename.filter(|f| !f.is_empty());
                        self.content_type = header(&headers, "content-type").map(str::to_string);
                        self.found = true;
                    }
                    self.state = State::Content(take);
                }
            }
        }
    }
}

fn header<'a>(block: &'a str, name: &str) -> Option<&'a str> {
    block.split("\r\n").find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The `filename` of a part's Content-Disposition (`Some("")` for an unnamed file field).
fn part_filename(headers: &str) -> Option<String> {
    let disposition = header(headers, "content-disposition")?;
    disposition.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        let k = k.trim().to_ascii_lowercase();
        (k == "filename" || k == "filename*").then(|| {
            let v = v.trim().trim_matches('"');
            // A path some browsers send: only its last component.
            v.rsplit(['/', '\\']).next().unwrap_or(v).chars().take(256).collect()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(boundary: &str, file: &[u8]) -> Vec<u8> {
        let mut b = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nabc\r\n--{boundary}\r\n\
Content-Disposition: form-data; name=\"file\"; filename=\"C:\\\\fw\\\\DH_IPC-HX2XXX.bin\"\r\n\
Content-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        b.extend_from_slice(file);
        b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        b
    }

    #[test]
    fn the_boundary_parameter() {
        assert_eq!(
            boundary("multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxk").as_deref(),
            Some("----WebKitFormBoundary7MA4YWxk")
        );
        assert_eq!(boundary("Multipart/Form-Data; charset=utf-8; Boundary=\"a b\"").as_deref(), Some("a b"));
        assert_eq!(boundary("application/octet-stream; boundary=x"), None);
        assert_eq!(boundary("multipart/form-data"), None);
    }

    /// The file's bytes come out whole however the body is cut, including right inside the
    /// delimiter and with bytes that look like a delimiter's start in the file.
    #[test]
    fn the_file_comes_out_whole_at_any_cut() {
        let mut file = b"DH\x03\x04".to_vec();
        file.extend((0..5000u32).map(|i| (i * 7) as u8));
        // A delimiter's start that does not go on (a sender's boundary never occurs whole).
        file.extend_from_slice(b"\r\n--boun!\r\n-");
        let body = form("bound", &file);
        for step in [1, 2, 3, 7, 64, 1000, body.len()] {
            let mut x = FileExtractor::new("bound");
            let mut got = Vec::new();
            for chunk in body.chunks(step) {
                x.feed(chunk, &mut |b| got.extend_from_slice(b));
            }
            assert!(got == file, "step {step}: {} bytes out of {}", got.len(), file.len());
            assert!(x.done() && x.found);
            assert_eq!(x.filename.as_deref(), Some("DH_IPC-HX2XXX.bin"));
            assert_eq!(x.content_type.as_deref(), Some("application/octet-stream"));
        }
    }

    #[test]
    fn a_form_without_a_file_or_with_broken_headers_yields_nothing() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--b--\r\n";
        let mut x = FileExtractor::new("b");
        let mut got = Vec::new();
        x.feed(body, &mut |b| got.extend_from_slice(b));
        assert!(got.is_empty() && !x.found && x.done());
        let mut x = FileExtractor::new("b");
        let mut huge = b"--b\r\n".to_vec();
        huge.extend(std::iter::repeat_n(b'x', MAX_PART_HEADERS * 2));
        x.feed(&huge, &mut |b| got.extend_from_slice(b));
        assert!(got.is_empty() && x.done());
    }

    #[test]
    fn hostile_forms() {
        let samples = vec![form("bound", b"\x13\x59\x72\x32 image"), b"--b\r\n\r\n\r\n--b--".to_vec()];
        crate::hostile::each_variant(&samples, |d| {
            let mut x = FileExtractor::new("bound");
            let mut n = 0usize;
            for chunk in d.chunks(5) {
                x.feed(chunk, &mut |b| n += b.len());
            }
            assert!(n <= d.len());
        });
    }
}
