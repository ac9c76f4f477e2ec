//! Finds where a value sits in a JSON text, by path, so that errors found after parsing
//! (a fault naming a node that does not exist) can still name a line and column.
//!
//! The text has already parsed as JSON; this scanner only walks it. It returns `None` if
//! the path is not there (a field left to its default), and the caller then points at
//! the enclosing object instead.

/// One step of a path: an object key or an array index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Renders a path as `faults[2].crash.node`.
pub fn render(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The 1-based line and column of the value at `path`, or of its deepest existing
/// ancestor.
pub fn locate(text: &str, path: &[Seg]) -> (usize, usize) {
    let bytes = text.as_bytes();
    let mut pos = skip_ws(bytes, 0);
    for seg in path {
        match find_child(bytes, pos, seg) {
            Some(child) => pos = child,
            None => break,
        }
    }
    line_column(text, pos)
}

/// The 1-based line and column of byte `pos` of `text`.
pub fn line_column(text: &str, pos: usize) -> (usize, usize) {
    let before = &text[..pos.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.chars().count(), |nl| before[nl + 1..].chars().count()) + 1;
    (line, column)
}

fn skip_ws(bytes: &[u8], mut pos: usize) -> usize {
    while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
        pos += 1;
    }
    pos
}

/// The position just past the string starting at `pos` (which is a `"`).
fn skip_string(bytes: &[u8], mut pos: usize) -> usize {
    pos += 1;
    while pos < bytes.len() {
        match bytes[pos] {
            b'\\' => pos += 2,
            b'"' => return pos + 1,
            _ => pos += 1,
        }
    }
    pos
}

/// The position just past the value starting at `pos`.
fn skip_value(bytes: &[u8], pos: usize) -> usize {
    match bytes.get(pos) {
        Some(b'"') => skip_string(bytes, pos),
        Some(b'{') | Some(b'[') => {
            let mut depth = 0usize;
            let mut p = pos;
            while p < bytes.len() {
                match bytes[p] {
                    b'"' => {
                        p = skip_string(bytes, p);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return p + 1;
                        }
                    }
                    _ => {}
                }
                p += 1;
            }
            p
        }
        _ => {
            let mut p = pos;
            while p < bytes.len()
                && !matches!(bytes[p], b',' | b'}' | b']')
                && !bytes[p].is_ascii_whitespace()
            {
                p += 1;
            }
            p
        }
    }
}

fn find_child(bytes: &[u8], pos: usize, seg: &Seg) -> Option<usize> {
    match (bytes.get(pos)?, seg) {
        (b'{', Seg::Key(key)) => {
            let mut p = skip_ws(bytes, pos + 1);
            while bytes.get(p) == Some(&b'"') {
                let end = skip_string(bytes, p);
                let name: String = serde_json::from_slice(&bytes[p..end]).ok()?;
                p = skip_ws(bytes, end);
                p = skip_ws(bytes, p + 1); // the colon
                if name == *key {
                    return Some(p);
                }
                p = skip_ws(bytes, skip_value(bytes, p));
                if bytes.get(p) == Some(&b',') {
                    p = skip_ws(bytes, p + 1);
                }
            }
            None
        }
        (b'[', Seg::Index(index)) => {
            let mut p = skip_ws(bytes, pos + 1);
            for _ in 0..*index {
                if bytes.get(p) == Some(&b']') {
                    return None;
                }
                p = skip_ws(bytes, skip_value(bytes, p));
                if bytes.get(p) != Some(&b',') {
                    return None;
                }
                p = skip_ws(bytes, p + 1);
            }
            (bytes.get(p) != Some(&b']')).then_some(p)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_values() {
        let text = "{\n  \"a\": {\"b\": [1, {\"c\": \"x,}\"}, 3]},\n  \"d\": 4\n}";
        let key = |k: &str| Seg::Key(k.to_string());
        assert_eq!(locate(text, &[key("d")]), (3, 8));
        assert_eq!(locate(text, &[key("a"), key("b"), Seg::Index(2)]), (2, 32));
        assert_eq!(locate(text, &[key("a"), key("b"), Seg::Index(1), key("c")]), (2, 24));
        // Missing: the deepest ancestor that exists.
        assert_eq!(locate(text, &[key("a"), key("zz")]), (2, 8));
        assert_eq!(render(&[key("faults"), Seg::Index(2), key("node")]), "faults[2].node");
    }
}
