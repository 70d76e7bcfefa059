//! The chunks of a document are pinned: `vendor/text-splitter` is
//! text-splitter 0.33.1 from crates.io with a speed fix (PATCHED.md there)
//! that must not move a single chunk boundary. The digests below were
//! computed with the unpatched crate (the same documents, chunked by
//! `chunk_text`, each chunk's index, start and text hashed in order);
//! `STRATA_PRINT_CHUNK_DIGESTS=1 cargo test -p strata-kb --test chunking --
//! --nocapture` prints what this build computes.

use sha2::{Digest, Sha256};
use strata_kb::chunk::{chunk_text, Chunking};
use strata_kb::testdocs::markdown_book;
use strata_kb::DocKind;

fn digest(text: &str, kind: DocKind, chunking: Chunking) -> (usize, String) {
    let chunks = chunk_text(text, kind, chunking).expect("chunks");
    let mut h = Sha256::new();
    for c in &chunks {
        h.update((c.index as u64).to_le_bytes());
        h.update((c.start as u64).to_le_bytes());
        h.update((c.text.len() as u64).to_le_bytes());
        h.update(c.text.as_bytes());
    }
    (chunks.len(), hex::encode(h.finalize()))
}

/// (document bytes, seed, kind, chunk size, overlap, chunks, digest), from
/// the unpatched crate.
#[rustfmt::skip]
const PINNED: &[(usize, u64, DocKind, usize, usize, usize, &str)] = &[
    (400000, 1, DocKind::Markdown, 800, 150, 717, "69c0256e93060dcec0f85174ce258a2a9410e54d15afc835c42cb853e31be001"),
    (400000, 2, DocKind::Markdown, 200, 40, 3075, "a8ca02a3610d1d373826f26ca5c15402ac501aedf9a77b2aae2a3b6a24ac8670"),
    (200000, 3, DocKind::Markdown, 2000, 300, 140, "fa87b8993bcd3266c9b66d1298c7161db818c08cdb535a2ebb771810eddb38f0"),
    (400000, 4, DocKind::Text, 800, 150, 671, "03b323799f6e3e8b6adbcb6091500dcc1570c944041f58758f4f52f692087917"),
    (200000, 5, DocKind::Text, 300, 0, 878, "889a9f7b5a00bc4ffcf023d7ba66fb0b5d741746eb11c297bd3362e60aa3ef54"),
];

#[test]
fn chunks_are_those_of_text_splitter_0_33_1() {
    let cases: &[(usize, u64, DocKind, usize, usize)] = &[
        (400_000, 1, DocKind::Markdown, 800, 150),
        (400_000, 2, DocKind::Markdown, 200, 40),
        (200_000, 3, DocKind::Markdown, 2000, 300),
        (400_000, 4, DocKind::Text, 800, 150),
        (200_000, 5, DocKind::Text, 300, 0),
    ];
    let print = std::env::var_os("STRATA_PRINT_CHUNK_DIGESTS").is_some();
    let mut got = Vec::new();
    for &(bytes, seed, kind, size, overlap) in cases {
        let text = markdown_book(bytes, seed);
        let (n, d) = digest(&text, kind, Chunking { size, overlap });
        if print {
            println!("({bytes}, {seed}, DocKind::{kind:?}, {size}, {overlap}, {n}, \"{d}\"),");
        }
        got.push((bytes, seed, kind, size, overlap, n, d));
    }
    assert_eq!(got.len(), PINNED.len(), "one pinned digest per case");
    for (g, p) in got.iter().zip(PINNED) {
        assert_eq!(
            (g.0, g.1, g.2, g.3, g.4, g.5, g.6.as_str()),
            *p,
            "the chunks of this document changed"
        );
    }
}

#[test]
fn the_book_is_deterministic_and_sized() {
    let a = markdown_book(100_000, 7);
    assert_eq!(a, markdown_book(100_000, 7));
    assert_ne!(a, markdown_book(100_000, 8));
    assert!(a.len() >= 100_000 && a.len() < 101_000, "{}", a.len());
    for needle in [
        "\n# Chapter",
        "\n## Section",
        "\n### Topic",
        "\n- ",
        "\n1. ",
        "```\n",
        "| name | value |",
    ] {
        assert!(a.contains(needle), "{needle:?} is missing");
    }
}
