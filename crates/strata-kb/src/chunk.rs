//! Chunking: extracted text → overlapping pieces sized for embedding.
//!
//! `text-splitter` splits at the coarsest semantic boundary that fits
//! (Markdown structure — headings, blocks, lists — with `MarkdownSplitter`;
//! paragraphs, sentences, words otherwise), measured in characters.
//! Defaults: 800 characters with 150 of overlap; a bot overrides them with
//! the settings `kb.chunk_size` and `kb.chunk_overlap`.

use strata_core::{Error, Result};
use text_splitter::{ChunkConfig, MarkdownSplitter, TextSplitter};

use crate::extract::DocKind;

/// Default chunk size, in characters.
pub const DEFAULT_CHUNK_SIZE: usize = 800;
/// Default overlap between neighbouring chunks, in characters.
pub const DEFAULT_CHUNK_OVERLAP: usize = 150;
/// Smallest and largest chunk size accepted.
pub const CHUNK_SIZE_RANGE: std::ops::RangeInclusive<usize> = 50..=20_000;
/// The bot setting for the chunk size.
pub const CHUNK_SIZE_SETTING: &str = "kb.chunk_size";
/// The bot setting for the overlap.
pub const CHUNK_OVERLAP_SETTING: &str = "kb.chunk_overlap";

/// How to chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunking {
    pub size: usize,
    pub overlap: usize,
}

impl Default for Chunking {
    fn default() -> Self {
        Chunking {
            size: DEFAULT_CHUNK_SIZE,
            overlap: DEFAULT_CHUNK_OVERLAP,
        }
    }
}

impl Chunking {
    /// Checks the sizes: size within [`CHUNK_SIZE_RANGE`], overlap below
    /// half the size.
    pub fn validate(&self) -> Result<()> {
        if !CHUNK_SIZE_RANGE.contains(&self.size) {
            return Err(Error::invalid(format!(
                "{CHUNK_SIZE_SETTING} must be {}..={}, got {}",
                CHUNK_SIZE_RANGE.start(),
                CHUNK_SIZE_RANGE.end(),
                self.size
            ))
            .with_code("invalid_chunking"));
        }
        if self.overlap * 2 > self.size {
            return Err(Error::invalid(format!(
                "{CHUNK_OVERLAP_SETTING} must be at most half of {CHUNK_SIZE_SETTING} ({}), got {}",
                self.size / 2,
                self.overlap
            ))
            .with_code("invalid_chunking"));
        }
        Ok(())
    }

    /// A short stable description (`800/150`), part of a document's
    /// fingerprint: changing the chunking re-indexes on the next upload.
    pub fn tag(&self) -> String {
        format!("{}/{}", self.size, self.overlap)
    }
}

/// One chunk of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Position in the document, from 0.
    pub index: usize,
    /// Byte offset in the extracted text.
    pub start: usize,
    pub text: String,
}

/// Splits `text` into chunks.
pub fn chunk_text(text: &str, kind: DocKind, chunking: Chunking) -> Result<Vec<Chunk>> {
    chunking.validate()?;
    let config = ChunkConfig::new(chunking.size)
        .with_overlap(chunking.overlap)
        .map_err(|e| Error::invalid(e.to_string()).with_code("invalid_chunking"))?;
    let pieces: Vec<(usize, &str)> = if kind == DocKind::Markdown {
        MarkdownSplitter::new(config).chunk_indices(text).collect()
    } else {
        TextSplitter::new(config).chunk_indices(text).collect()
    };
    Ok(pieces
        .into_iter()
        .filter(|(_, t)| !t.trim().is_empty())
        .enumerate()
        .map(|(index, (start, t))| Chunk {
            index,
            start,
            text: t.to_owned(),
        })
        .collect())
}

/// Version of what is stored per chunk (its text, its context head, what is
/// embedded and what the keyword index holds). A document indexed with an
/// older version is re-indexed at start (`KbStore::prepare`), and the
/// version is part of a document's fingerprint.
/// 1: the chunk's text alone; 2: with its context head ([`chunk_heads`]).
pub const CHUNKER_VERSION: i64 = 2;

/// The context head of each chunk (contextual chunk headers): where the
/// chunk sits, as `path > title > section > subsection`, the document's
/// path inside the knowledge base (`rel_path`), its title (the first
/// Markdown `# ` heading; left out when it only repeats the file name) and
/// the Markdown headings in force where the chunk starts (outside code
/// fences). The head is embedded with the chunk's text and indexed as the
/// keyword index's `head` column, so a chunk deep in a section about
/// "Options" of the page "tar(1)" is still found by those words.
pub fn chunk_heads(rel_path: &str, text: &str, kind: DocKind, chunks: &[Chunk]) -> Vec<String> {
    // (byte offset, level, heading) of every Markdown ATX heading.
    let mut headings: Vec<(usize, usize, &str)> = Vec::new();
    if kind == DocKind::Markdown {
        let mut fence = false;
        let mut offset = 0;
        for line in text.split_inclusive('\n') {
            let trimmed = line.trim_start();
            if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
                fence = !fence;
            } else if !fence && line.starts_with('#') {
                let level = line.bytes().take_while(|b| *b == b'#').count();
                let rest = &line[level..];
                if level <= 6 && (rest.starts_with(' ') || rest.trim().is_empty()) {
                    let title = clip(rest.trim().trim_end_matches('#').trim(), MAX_HEADING_BYTES);
                    if !title.is_empty() {
                        headings.push((offset, level, title));
                    }
                }
            }
            offset += line.len();
        }
    }
    let name = rel_path.rsplit('/').next().unwrap_or(rel_path);
    let stem = name.split('.').next().unwrap_or(name);
    let title = headings
        .iter()
        .find(|h| h.1 == 1)
        .map(|h| h.2)
        .filter(|t| !t.eq_ignore_ascii_case(stem));
    let mut stack: Vec<(usize, &str)> = Vec::new();
    let mut next = 0;
    chunks
        .iter()
        .map(|c| {
            while next < headings.len() && headings[next].0 <= c.start {
                let (_, level, h) = headings[next];
                stack.retain(|(l, _)| *l < level);
                stack.push((level, h));
                next += 1;
            }
            let mut parts: Vec<&str> = vec![rel_path];
            parts.extend(title);
            parts.extend(stack.iter().filter(|(l, _)| *l > 1).map(|(_, h)| *h));
            let head = parts.join(" > ");
            clip(&head, MAX_HEAD_BYTES).to_owned()
        })
        .collect()
}

/// Longest heading carried into a chunk's head, in bytes: a stored
/// document's `# ` line may be megabytes long, and every chunk repeats it.
pub const MAX_HEADING_BYTES: usize = 200;
/// Longest context head of a chunk, in bytes (path and headings together).
pub const MAX_HEAD_BYTES: usize = 512;

/// `s` cut to at most `max` bytes, at a character boundary.
fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// What is embedded for a chunk: its head, a blank line, its text.
pub fn embedding_text(head: &str, text: &str) -> String {
    if head.is_empty() {
        text.to_owned()
    } else {
        format!("{head}\n\n{text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_carry_path_title_and_the_sections_in_force() {
        let text = "# tar(1)\n\n## NAME\n\ntar - archiver\n\n```\n# not a heading\n```\n\n## OPTIONS\n\n### Compression\n\n-z gzip\n\n## SEE ALSO\n\ncpio\n";
        let at = |s: &str| text.find(s).expect("in the text");
        let chunks: Vec<Chunk> = [0, at("tar -"), at("-z"), at("cpio")]
            .iter()
            .enumerate()
            .map(|(index, &start)| Chunk {
                index,
                start,
                text: String::new(),
            })
            .collect();
        let heads = chunk_heads("man/tar.1.md", text, DocKind::Markdown, &chunks);
        assert_eq!(
            heads,
            [
                "man/tar.1.md > tar(1)",
                "man/tar.1.md > tar(1) > NAME",
                "man/tar.1.md > tar(1) > OPTIONS > Compression",
                "man/tar.1.md > tar(1) > SEE ALSO",
            ]
        );
        // A title that repeats the file name is left out; plain text has no
        // headings.
        let md = "# json\n\nbody\n";
        let one = [Chunk {
            index: 0,
            start: 0,
            text: md.into(),
        }];
        assert_eq!(
            chunk_heads("json.md", md, DocKind::Markdown, &one),
            ["json.md"]
        );
        assert_eq!(
            chunk_heads("a/notes.txt", "# x\n", DocKind::Text, &one),
            ["a/notes.txt"]
        );
        assert_eq!(embedding_text("", "t"), "t");
        assert_eq!(embedding_text("h", "t"), "h\n\nt");
    }

    #[test]
    fn heads_stay_bounded_whatever_the_headings() {
        // A megabyte-long title of multi-byte letters and a long section
        // heading: each chunk's head stays within MAX_HEAD_BYTES, cut at a
        // character boundary, and still starts with the path.
        let title = "é".repeat(500_000);
        let text = format!(
            "# {title}

## {}

body
",
            "x".repeat(1000)
        );
        let chunks: Vec<Chunk> = (0..3)
            .map(|index| Chunk {
                index,
                start: text.len() - 5,
                text: "body".into(),
            })
            .collect();
        let heads = chunk_heads("docs/big.md", &text, DocKind::Markdown, &chunks);
        assert_eq!(heads.len(), 3);
        for h in &heads {
            assert!(h.len() <= MAX_HEAD_BYTES, "head of {} bytes", h.len());
            assert!(h.starts_with("docs/big.md > éé"), "{h}");
        }
        assert_eq!(clip("aé", 2), "a");
        assert_eq!(clip("abc", 5), "abc");
    }
}
