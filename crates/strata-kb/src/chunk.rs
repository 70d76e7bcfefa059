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
