//! Quick recall/QPS check on the reference dataset (developer tool; the
//! benchmark proper is `bash bench/vectors.sh`).
use std::time::Instant;
use strata_vectors::{
    HnswParams, IndexConfig, IndexedPoint, Metric, PointId, Quantization, VectorIndex,
};

fn read_vecs(path: &str) -> Vec<Vec<f32>> {
    let b = std::fs::read(path).expect("read");
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let d = u32::from_le_bytes(b[at..at + 4].try_into().expect("4")) as usize;
        at += 4;
        out.push(
            b[at..at + d * 4]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4")))
                .collect(),
        );
        at += d * 4;
    }
    out
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or("/work/shared/bench/data".into());
    let efc: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let base = read_vecs(&format!("{dir}/base.fvecs"));
    let queries = read_vecs(&format!("{dir}/query.fvecs"));
    let gt: Vec<Vec<u32>> = read_vecs(&format!("{dir}/groundtruth.ivecs"))
        .into_iter()
        .map(|v| v.iter().map(|x| x.to_bits()).collect())
        .collect();
    let idx = VectorIndex::new(IndexConfig {
        dimension: 384,
        metric: Metric::Cosine,
        hnsw: HnswParams {
            m: 16,
            ef_construction: efc,
            ef_search: 64,
        },
        quantization: Quantization::None,
    });
    println!("kernel {}", strata_vectors::distance::kernel_name());
    let t = Instant::now();
    for (c, chunk) in base.chunks(10_000).enumerate() {
        let pts = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| IndexedPoint {
                id: PointId::Num((c * 10_000 + i) as u64),
                vector: v.clone(),
                payload: None,
                ingested_at: 0,
                expires_at: None,
            })
            .collect();
        idx.upsert_batch(pts, 2);
    }
    println!(
        "build {:.2}s mem {:.1} MiB",
        t.elapsed().as_secs_f64(),
        idx.memory_bytes() as f64 / 1048576.0
    );
    let t = Instant::now();
    let mut f =
        std::io::BufWriter::new(std::fs::File::create("/tmp/quick_ann.idx").expect("create"));
    idx.write_snapshot(&mut f, 1).expect("write");
    drop(f);
    println!("snapshot write {:.3}s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let (idx2, _) =
        VectorIndex::open_snapshot(std::path::Path::new("/tmp/quick_ann.idx"), *idx.config())
            .expect("load");
    println!("snapshot load {:.3}s", t.elapsed().as_secs_f64());
    drop(idx2);
    for ef in [10, 12, 16, 24, 32, 64, 128] {
        let mut best = f64::MAX;
        let mut hits = 0;
        for _ in 0..2 {
            hits = 0;
            let t = Instant::now();
            for (q, g) in queries.iter().zip(&gt) {
                let r = idx.search(q, 10, ef, None, 0);
                for (id, _) in r {
                    if let PointId::Num(n) = id {
                        if g[..10].contains(&(n as u32)) {
                            hits += 1;
                        }
                    }
                }
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "ef {ef:4} recall {:.4} qps {:.0}",
            hits as f64 / 10000.0,
            1000.0 / best
        );
    }
}
