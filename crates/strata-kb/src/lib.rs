//! Strata's knowledge base: documents in a bot's `<bot>.gbai/<bot>.gbkb/`
//! drive folder that index themselves, and keyword, dense and hybrid search
//! over them.
//!
//! - [`extract`]: bytes → text for text, Markdown, HTML, PDF, DOCX, CSV and
//!   JSON, bounded in size, pages, decompression and time.
//! - [`chunk`]: text → overlapping chunks (`text-splitter`, Markdown-aware).
//! - [`store`]: the durable job queue, documents, chunks and the FTS5 index
//!   in the records database.
//! - [`fusion`]: reciprocal rank and weighted fusion for hybrid search.
//! - [`memory`]: conversation memory, a bot's messages searchable by
//!   meaning.
//! - [`KnowledgeBase`]: the worker that runs the pipeline over the drive,
//!   embedder and vectors layers, and search.

pub mod base;
pub mod chunk;
pub mod extract;
pub mod fusion;
pub mod memory;
pub mod store;
pub mod testdocs;

pub use base::{
    kb_prefix, KbOptions, KnowledgeBase, SearchHit, SearchMode, SearchQuery, KB_COLLECTION,
};
pub use chunk::{chunk_heads, chunk_text, embedding_text, Chunk, Chunking, CHUNKER_VERSION};
pub use extract::{extract, DocKind, ExtractLimits, ExtractedText};
pub use fusion::Fusion;
pub use memory::{ConversationMemory, MemoryHit, MemoryQuery, MemoryStatus};
pub use store::{DocumentRow, IndexProgress, KbFilter, KbStore, KeywordParams};
