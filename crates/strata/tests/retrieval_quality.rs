//! Retrieval quality of the knowledge base on two labelled evaluation sets
//! of real documents of different kinds, each query labelled with the one
//! document that answers it and split in two halves, `dev` and `test`,
//! with a fixed seed:
//!
//! - `tests/fixtures/retrieval_eval.json.gz` (`scripts/make-retrieval-eval.py`):
//!   95 modules of the Python standard library as Markdown documents; query
//!   sets `questions` (100 hand-written questions) and `passages` (238
//!   passages held out of the corpus);
//! - `tests/fixtures/manpage_eval.json.gz` (`scripts/make-manpage-eval.py`):
//!   374 section-1 manual pages as Markdown; query set `manpages` (374
//!   questions written as a user who does not know the program's name would
//!   ask them, split by document).
//!
//! Indexes each corpus in a bot of its own with the local embedder through
//! the facade, searches every query in the three modes (and hybrid with the
//! other fusions), and reports recall@5 and MRR@10 at document level (a
//! document's rank is the rank of its best chunk) on both splits. Nothing
//! here tunes anything: methods and parameters were chosen on the `dev`
//! halves (see bench/results/retrieval.md); this test holds hybrid search,
//! with its defaults, to at least the better of keyword and dense on the
//! `test` half of the standard-library sets on both measures, and on the
//! manual pages to at least keyword (there dense alone is still better:
//! an open item of issue 14).
//!
//! `STRATA_EVAL_REPORT=<file.json>` writes the figures and
//! `STRATA_EVAL_DUMP=<file.json>` the raw keyword lists (with every keyword
//! variant studied) and dense lists of every query (bench/retrieval.sh turns
//! them into the report and the dev-split parameter study);
//! `STRATA_EMBEDDER_PRECISION=f32|bf16|auto` picks the local embedder's
//! arithmetic (default `auto`, as the server).
//! `STRATA_EVAL_SETTINGS=<JSON object>` sets bot settings on both bots before
//! indexing (the benchmark's chunking variants, e.g.
//! `{"kb.chunk_context": false}` or `{"kb.chunk_size": 500}`).

use std::collections::HashMap;
use std::io::Read;

use serde::Deserialize;
use serde_json::{json, Value};
use strata::kb::{Fusion, KbFilter, KeywordParams, SearchMode, SearchQuery};
use strata::{BotId, Config, Principal, Role, Strata};

#[derive(Deserialize)]
struct EvalSet {
    documents: Vec<Document>,
    questions: Vec<Labelled>,
    #[serde(default)]
    passages: Vec<Labelled>,
}

#[derive(Deserialize)]
struct Document {
    key: String,
    text: String,
}

#[derive(Deserialize)]
struct Labelled {
    query: String,
    document: String,
    split: String,
}

/// Chunks fetched per query (documents are ranked by their best chunk): the
/// largest `k` whose hybrid search fuses the default candidate depth (40
/// from each list, what every request with k ≤ 20 gets, the API's default
/// k = 5 included).
const K: usize = 20;
/// Depth of the lists `STRATA_EVAL_DUMP` writes, for studying candidate
/// depths up to it.
const DUMP_DEPTH: usize = 60;
/// MRR counts a document found within the first this many.
const MRR_CUTOFF: usize = 10;
/// Keyword variants the dump holds besides the default: the BM25 weight of
/// the context head against the text, and whether stop words are dropped.
const KEYWORD_VARIANTS: &[(f64, bool)] = &[
    (0.0, false),
    (0.0, true),
    (1.0, false),
    (1.0, true),
    (2.0, true),
    (4.0, true),
    (8.0, true),
];

#[derive(Debug, Clone, Copy, Default)]
struct Score {
    recall5: f64,
    mrr10: f64,
}

fn load(name: &str) -> EvalSet {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let file = std::fs::File::open(&path).expect("open the evaluation set");
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .expect("gunzip the evaluation set");
    serde_json::from_str(&text).expect("parse the evaluation set")
}

/// The document names of hits, in order of their best chunk.
fn doc_order<'a>(keys: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut docs: Vec<&str> = Vec::new();
    for key in keys {
        let name = key.rsplit('/').next().unwrap_or(key);
        if !docs.contains(&name) {
            docs.push(name);
        }
    }
    docs
}

async fn measure(
    scope: &strata::BotScope,
    set: &[&Labelled],
    mode: SearchMode,
    fusion: Option<Fusion>,
) -> Score {
    let mut sum = Score::default();
    for q in set {
        let hits = scope
            .kb_search(SearchQuery {
                query: q.query.clone(),
                mode,
                k: K,
                filter: KbFilter::default(),
                fusion,
            })
            .await
            .expect("search");
        let docs = doc_order(hits.iter().map(|h| h.document.as_str()));
        if let Some(pos) = docs.iter().position(|d| *d == q.document) {
            if pos < 5 {
                sum.recall5 += 1.0;
            }
            if pos < MRR_CUTOFF {
                sum.mrr10 += 1.0 / (pos as f64 + 1.0);
            }
        }
    }
    let n = set.len() as f64;
    Score {
        recall5: sum.recall5 / n,
        mrr10: sum.mrr10 / n,
    }
}

/// Uploads `docs` into the bot's knowledge base folder.
async fn upload(scope: &strata::BotScope, bot: &str, docs: &[Document]) {
    for d in docs {
        let body: strata_core::drive::ByteStream = Box::pin(futures_util::stream::iter([Ok(
            bytes::Bytes::from(d.text.clone()),
        )]));
        scope
            .put_file(
                &format!("{bot}.gbai/{bot}.gbkb/{}", d.key),
                body,
                Some("text/markdown"),
                None,
            )
            .await
            .expect("upload");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_is_at_least_as_good_as_the_better_of_keyword_and_dense_on_the_test_split() {
    let Some(model) = strata_testkit::backend(
        "STRATA_TEST_MODEL_DIR",
        "hybrid_is_at_least_as_good_as_the_better_of_keyword_and_dense_on_the_test_split",
    ) else {
        return;
    };
    let stdlib = load("retrieval_eval.json.gz");
    assert!(
        stdlib.documents.len() >= 90
            && stdlib.questions.len() >= 50
            && stdlib.passages.len() >= 200
    );
    let man = load("manpage_eval.json.gz");
    assert!(man.documents.len() >= 300 && man.questions.len() >= 300);
    for q in stdlib
        .questions
        .iter()
        .chain(&stdlib.passages)
        .chain(&man.questions)
    {
        assert!(q.split == "dev" || q.split == "test", "split {:?}", q.split);
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::embedded(dir.path());
    config.embedder = format!("local:{}", std::path::Path::new(&model).display()).into();
    // The embedder's arithmetic as a server would read it (default `auto`:
    // bf16 where the CPU has it), so the f32 path can be evaluated too.
    if let Ok(p) = std::env::var("STRATA_EMBEDDER_PRECISION") {
        config.embedder_precision =
            strata_embed::LocalPrecision::parse(&p).expect("STRATA_EMBEDDER_PRECISION");
    }
    let strata = Strata::open(config).await.expect("open");
    let settings: serde_json::Map<String, Value> = match std::env::var("STRATA_EVAL_SETTINGS") {
        Ok(s) if !s.trim().is_empty() => serde_json::from_str(&s).expect("STRATA_EVAL_SETTINGS"),
        _ => Default::default(),
    };
    // (bot, its corpus): one bot per corpus, so that each has its own BM25
    // statistics, as separate knowledge bases do.
    let corpora: [(&str, &EvalSet); 2] = [("eval", &stdlib), ("man", &man)];
    let mut scopes = HashMap::new();
    for (bot, _) in corpora {
        strata
            .create_bot(&Principal::Admin, bot, "Evaluation")
            .await
            .expect("bot");
        let scope = strata
            .scope(&Principal::Admin, bot, Role::Admin)
            .await
            .expect("scope");
        for (name, value) in &settings {
            scope
                .set_config_value(name, value.clone())
                .await
                .expect("bot setting");
        }
        scopes.insert(bot, scope);
    }
    let started = std::time::Instant::now();
    for (bot, set) in corpora {
        upload(&scopes[bot], bot, &set.documents).await;
    }
    let kb = strata.knowledge_base().expect("kb");
    let jobs = kb.drain().await.expect("index");
    assert_eq!(jobs, stdlib.documents.len() + man.documents.len());
    let indexing_s = started.elapsed().as_secs_f64();
    let mut chunks = serde_json::Map::new();
    for (bot, _) in corpora {
        let page = scopes[bot]
            .kb_documents(None, None, None)
            .await
            .expect("documents");
        assert!(
            page.documents.iter().all(|d| d.status == "indexed"),
            "every document is indexed"
        );
        let n: i64 = page.documents.iter().map(|d| d.chunks).sum();
        chunks.insert(bot.into(), json!(n));
    }

    // Fixed variants: the three modes, hybrid's default fusion, and the
    // other fusions: `adaptive`, `rrf` as the API sends it (k = 10) and with
    // the customary k = 60, and `weighted` with the weights either side of
    // the default.
    let rrf_label = format!("hybrid rrf k={}", Fusion::DEFAULT_RRF_K);
    let variants: Vec<(&str, SearchMode, Option<Fusion>)> = vec![
        ("keyword", SearchMode::Keyword, None),
        ("dense", SearchMode::Dense, None),
        ("hybrid", SearchMode::Hybrid, None),
        (
            "hybrid adaptive",
            SearchMode::Hybrid,
            Some(Fusion::Adaptive),
        ),
        (
            &rrf_label,
            SearchMode::Hybrid,
            Some(Fusion::Rrf {
                k: Fusion::DEFAULT_RRF_K,
            }),
        ),
        (
            "hybrid rrf k=60",
            SearchMode::Hybrid,
            Some(Fusion::Rrf { k: 60.0 }),
        ),
        (
            "hybrid weighted 0.3",
            SearchMode::Hybrid,
            Some(Fusion::Weighted { dense_weight: 0.3 }),
        ),
        (
            "hybrid weighted 0.5",
            SearchMode::Hybrid,
            Some(Fusion::Weighted { dense_weight: 0.5 }),
        ),
        (
            "hybrid weighted 0.7",
            SearchMode::Hybrid,
            Some(Fusion::Weighted { dense_weight: 0.7 }),
        ),
    ];
    // (query set, its bot, its queries).
    let sets: [(&str, &str, &Vec<Labelled>); 3] = [
        ("questions", "eval", &stdlib.questions),
        ("passages", "eval", &stdlib.passages),
        ("manpages", "man", &man.questions),
    ];
    let mut table: HashMap<(&str, &str, &str), Score> = HashMap::new();
    let mut rows = Vec::new();
    for (set_name, bot, set) in sets {
        for split in ["dev", "test"] {
            let part: Vec<&Labelled> = set.iter().filter(|q| q.split == split).collect();
            for (name, mode, fusion) in &variants {
                let s = measure(&scopes[bot], &part, *mode, *fusion).await;
                eprintln!(
                    "{set_name:9} {split:4} {name:22} recall@5 {:.3}  MRR@10 {:.3}",
                    s.recall5, s.mrr10
                );
                table.insert((set_name, split, name), s);
                rows.push(json!({"set": set_name, "split": split, "method": name,
                    "recall_at_5": s.recall5, "mrr_at_10": s.mrr10, "queries": part.len()}));
            }
        }
    }
    // The raw inputs of hybrid search, each list DUMP_DEPTH deep, for
    // studying fusions, keyword variants and their parameters offline (on
    // the dev split).
    if let Some(path) = std::env::var_os("STRATA_EVAL_DUMP") {
        let mut dump = Vec::new();
        for (set_name, bot, set) in sets {
            let bot_id = BotId::parse(bot).expect("bot id");
            for q in set.iter() {
                let mut lists = serde_json::Map::new();
                for (name, mode) in [
                    ("keyword", SearchMode::Keyword),
                    ("dense", SearchMode::Dense),
                ] {
                    let hits = scopes[bot]
                        .kb_search(SearchQuery {
                            query: q.query.clone(),
                            mode,
                            k: DUMP_DEPTH,
                            filter: KbFilter::default(),
                            fusion: None,
                        })
                        .await
                        .expect("search");
                    let list: Vec<Value> = hits
                        .iter()
                        .map(|h| {
                            json!([
                                h.document.rsplit('/').next().unwrap_or(""),
                                h.chunk,
                                h.score
                            ])
                        })
                        .collect();
                    lists.insert(name.into(), Value::Array(list));
                }
                for &(head_weight, drop_stopwords) in KEYWORD_VARIANTS {
                    let hits = kb
                        .store()
                        .keyword_search_with(
                            &bot_id,
                            &q.query,
                            DUMP_DEPTH,
                            &KbFilter::default(),
                            KeywordParams {
                                head_weight,
                                drop_stopwords,
                            },
                        )
                        .await
                        .expect("keyword search");
                    let list: Vec<Value> = hits
                        .iter()
                        .map(|h| json!([h.key.rsplit('/').next().unwrap_or(""), h.chunk, h.score]))
                        .collect();
                    lists.insert(
                        format!("keyword hw={head_weight} sw={}", drop_stopwords as u8),
                        Value::Array(list),
                    );
                }
                dump.push(json!({"set": set_name, "split": q.split, "query": q.query,
                    "document": q.document, "lists": lists}));
            }
        }
        std::fs::write(&path, serde_json::to_vec(&dump).expect("json")).expect("write the dump");
    }
    if let Some(path) = std::env::var_os("STRATA_EVAL_REPORT") {
        let default_kw = KeywordParams::default();
        let report = json!({
            "documents": {"eval": stdlib.documents.len(), "man": man.documents.len()},
            "chunks": chunks,
            "queries": {"questions": stdlib.questions.len(), "passages": stdlib.passages.len(),
                        "manpages": man.questions.len()},
            "settings": settings,
            "k": K,
            "mrr_cutoff": MRR_CUTOFF,
            "indexing_seconds": indexing_s,
            "default_fusion": format!("{:?}", Fusion::default()),
            "default_keyword": format!("keyword hw={} sw={}", default_kw.head_weight,
                                       default_kw.drop_stopwords as u8),
            "rrf_k": Fusion::DEFAULT_RRF_K,
            "rows": rows,
        });
        std::fs::write(&path, serde_json::to_vec_pretty(&report).expect("json"))
            .expect("write the report");
    }
    // The hold: on the test split only, which played no part in any choice.
    // On the manual pages (issue 14's second set) no fusion studied reaches
    // the better single mode (dense) on the dev half (bench/results/
    // retrieval.md: the best worst margin is below 0), so hybrid is held there only
    // to at least keyword, and the gap to dense is an open item of issue 14,
    // not something this test claims.
    for (set_name, _, _) in sets {
        if set_name == "manpages" {
            let kw = table[&(set_name, "test", "keyword")];
            let de = table[&(set_name, "test", "dense")];
            let hy = table[&(set_name, "test", "hybrid")];
            assert!(
                kw.mrr10 > 0.3 && de.mrr10 > 0.3,
                "{set_name}: {kw:?} {de:?}"
            );
            assert!(
                hy.recall5 >= kw.recall5 - 1e-9 && hy.mrr10 >= kw.mrr10 - 1e-9,
                "{set_name} (test): hybrid {hy:?} < keyword {kw:?}"
            );
            continue;
        }
        let kw = table[&(set_name, "test", "keyword")];
        let de = table[&(set_name, "test", "dense")];
        let hy = table[&(set_name, "test", "hybrid")];
        // Sanity: the set is neither trivial nor broken for either mode.
        assert!(
            kw.mrr10 > 0.3 && de.mrr10 > 0.3,
            "{set_name}: {kw:?} {de:?}"
        );
        assert!(
            hy.recall5 >= kw.recall5.max(de.recall5) - 1e-9,
            "{set_name} (test): hybrid recall@5 {:.3} < keyword {:.3} / dense {:.3}",
            hy.recall5,
            kw.recall5,
            de.recall5
        );
        assert!(
            hy.mrr10 >= kw.mrr10.max(de.mrr10) - 1e-9,
            "{set_name} (test): hybrid MRR@10 {:.3} < keyword {:.3} / dense {:.3}",
            hy.mrr10,
            kw.mrr10,
            de.mrr10
        );
    }
    strata.close().await;
}
