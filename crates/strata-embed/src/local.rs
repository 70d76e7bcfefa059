//! `STRATA_EMBEDDER=local:<model folder>`: a BERT-family sentence-transformer
//! run in-process.
//!
//! What sentence-transformers does for all-MiniLM-L6-v2, step by step:
//! tokenize with the model's `tokenizer.json` (uncased WordPiece, `[CLS] …
//! [SEP]`), truncate to `max_seq_length` = 256 word pieces including the two
//! special tokens, pad each batch to its longest text, run the encoder with
//! the attention mask and token type ids of zeros, average the last hidden
//! states over the tokens the mask keeps (padding excluded), and L2-normalise.
//! The fixture test (`tests/local.rs`) holds the result to cosine ≥ 0.999
//! against vectors sentence-transformers computed.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use strata_core::embed::Embedder;
use strata_core::{Error, Result};
use tokenizers::{Encoding, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

/// Texts per forward pass (sentence-transformers' default `batch_size`).
pub const LOCAL_BATCH_SIZE: usize = 32;
/// Word pieces per text, special tokens included: all-MiniLM-L6-v2's
/// `max_seq_length` (its BERT has 512 positions; it was trained on 128 and
/// sentence-transformers runs it with 256).
pub const LOCAL_MAX_TOKENS: usize = 256;
/// Word pieces per forward pass of the packed engine (it packs texts
/// without padding): small enough that a layer's activations stay in the
/// caches (~1.5 MB per (tokens, 384) matrix for MiniLM), large enough for
/// efficient matrix products; 1024 measured a little faster than 2048 and
/// 4096 here.
const FAST_BATCH_TOKENS: usize = 1024;

/// What runs the encoder of a [`LocalEmbedder`]. Both compute the same
/// vectors (to float32 rounding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LocalEngine {
    /// Texts packed without padding, attention per text, fused row-wise
    /// passes, all in f32 (`mod fast` below; the default where the CPU has
    /// no AVX-512 BF16, see [`LocalPrecision`]).
    #[default]
    Packed,
    /// The packed engine with its matrix products in bfloat16 (f32
    /// accumulation) on AVX-512 BF16: 1.49× the f32 engine's chunks/s in
    /// `bench/kb.sh`, vectors within a cosine of 0.999 of the f32 engine's
    /// (the accuracy gate in `tests/local.rs`). Opening it on a CPU without AVX-512 BF16
    /// is an error.
    PackedBf16,
    /// candle-transformers' `BertModel` on padded batches of
    /// [`LOCAL_BATCH_SIZE`].
    CandleBert,
}

/// The arithmetic of the local embedder's matrix products
/// (`STRATA_EMBEDDER_PRECISION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LocalPrecision {
    /// bf16 where the CPU has AVX-512 BF16, f32 elsewhere (the default).
    #[default]
    Auto,
    /// float32 throughout.
    F32,
    /// bfloat16 products, f32 accumulation; an error without AVX-512 BF16.
    Bf16,
}

impl LocalPrecision {
    /// Parses `auto`, `f32` or `bf16` (any case).
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(LocalPrecision::Auto),
            "f32" => Ok(LocalPrecision::F32),
            "bf16" => Ok(LocalPrecision::Bf16),
            other => Err(
                Error::invalid(format!("{other:?}: expected auto, f32 or bf16"))
                    .with_code("invalid_config"),
            ),
        }
    }

    /// The engine this precision runs on this CPU.
    pub fn engine(self) -> LocalEngine {
        match self {
            LocalPrecision::Auto if strata_bf16::supported() => LocalEngine::PackedBf16,
            LocalPrecision::Auto | LocalPrecision::F32 => LocalEngine::Packed,
            LocalPrecision::Bf16 => LocalEngine::PackedBf16,
        }
    }
}

/// A sentence-transformer loaded from a model folder.
#[derive(Clone)]
pub struct LocalEmbedder {
    name: String,
    dimension: usize,
    model: Arc<LoadedModel>,
}

struct LoadedModel {
    engine: Engine,
    tokenizer: Tokenizer,
}

/// The loaded encoder (see [`LocalEngine`]).
enum Engine {
    Fast(Box<fast::FastBert>),
    Candle {
        bert: Box<BertModel>,
        device: Device,
    },
}

impl fmt::Debug for LocalEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalEmbedder")
            .field("name", &self.name)
            .field("dimension", &self.dimension)
            .finish_non_exhaustive()
    }
}

fn load_error(dir: &Path, what: impl fmt::Display) -> Error {
    Error::invalid(format!("STRATA_EMBEDDER=local:{}: {what}", dir.display()))
        .with_code("embedder_load_failed")
}

fn model_error(e: impl fmt::Display) -> Error {
    Error::internal(format!("local embedder: {e}")).with_code("embedder_failed")
}

impl LocalEmbedder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from
    /// `dir` (blocking: reads ~90 MB for MiniLM). Every failure names the
    /// folder and the file.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, LocalPrecision::Auto.engine())
    }

    /// [`LocalEmbedder::open`] with a chosen engine (to compare them; the
    /// packed one falls back to candle's for a configuration it does not
    /// cover).
    pub fn open_with(dir: impl AsRef<Path>, engine: LocalEngine) -> Result<Self> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(load_error(dir, "the model folder does not exist"));
        }
        let file = |name: &str| -> Result<PathBuf> {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(load_error(dir, format_args!("{name} is missing")))
            }
        };
        let config_path = file("config.json")?;
        let tokenizer_path = file("tokenizer.json")?;
        let weights_path = file("model.safetensors")?;

        let config_text = std::fs::read_to_string(&config_path)
            .map_err(|e| load_error(dir, format_args!("reading config.json: {e}")))?;
        let config: BertConfig = serde_json::from_str(&config_text)
            .map_err(|e| load_error(dir, format_args!("config.json is not a BERT config: {e}")))?;
        if config.hidden_size == 0 {
            return Err(load_error(dir, "config.json has hidden_size 0"));
        }

        let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| load_error(dir, format_args!("tokenizer.json: {e}")))?;
        // The folder's tokenizer.json pads every text to 128 and truncates at
        // 128; sentence-transformers overrides both: truncation at
        // max_seq_length, padding per batch (done here when batching).
        let max_tokens = LOCAL_MAX_TOKENS.min(config.max_position_embeddings);
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| load_error(dir, format_args!("tokenizer truncation: {e}")))?;
        tokenizer.with_padding(None);

        let device = Device::Cpu;
        let weights = std::fs::read(&weights_path)
            .map_err(|e| load_error(dir, format_args!("reading model.safetensors: {e}")))?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .map_err(|e| load_error(dir, format_args!("model.safetensors: {e}")))?;
        let fits = |e: candle_core::Error| {
            load_error(
                dir,
                format_args!("model.safetensors does not fit config.json: {e}"),
            )
        };
        if engine == LocalEngine::PackedBf16 && !strata_bf16::supported() {
            return Err(Error::invalid(
                "the bf16 embedder needs a CPU with AVX-512 BF16; this one has none (use STRATA_EMBEDDER_PRECISION=f32 or auto)",
            )
            .with_code("invalid_config"));
        }
        let packed = matches!(engine, LocalEngine::Packed | LocalEngine::PackedBf16);
        let engine = if packed && fast::FastBert::supports(&config) {
            let bf16 = engine == LocalEngine::PackedBf16;
            Engine::Fast(Box::new(
                fast::FastBert::load(&vb, &config, bf16).map_err(fits)?,
            ))
        } else {
            Engine::Candle {
                bert: Box::new(BertModel::load(vb, &config).map_err(fits)?),
                device,
            }
        };

        let folder = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        Ok(LocalEmbedder {
            name: format!("local:{folder}"),
            dimension: config.hidden_size,
            model: Arc::new(LoadedModel { engine, tokenizer }),
        })
    }

    /// Embeds `texts` on the calling thread (CPU-bound; [`Embedder::embed`]
    /// runs it on the blocking pool).
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        self.model.embed(texts)
    }
}

impl LoadedModel {
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let encodings = self
            .tokenizer
            .encode_batch_fast(inputs, true)
            .map_err(|e| model_error(format_args!("tokenizing: {e}")))?;
        // Batch texts of similar length together (as sentence-transformers
        // does) so little is spent on padding; answers go back in order.
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].len()));
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        match &self.engine {
            Engine::Fast(bert) => {
                // No padding at all: a forward pass takes whole texts up to
                // a budget of word pieces.
                let mut start = 0;
                while start < order.len() {
                    let mut end = start;
                    let mut tokens = 0;
                    while end < order.len()
                        && (end == start
                            || tokens + encodings[order[end]].len() <= FAST_BATCH_TOKENS)
                    {
                        tokens += encodings[order[end]].len();
                        end += 1;
                    }
                    let batch = &order[start..end];
                    let ids: Vec<&[u32]> = batch.iter().map(|&i| encodings[i].get_ids()).collect();
                    let vectors = bert.embed(&ids).map_err(model_error)?;
                    for (&i, v) in batch.iter().zip(vectors) {
                        out[i] = v;
                    }
                    start = end;
                }
            }
            Engine::Candle { bert, device } => {
                for batch in order.chunks(LOCAL_BATCH_SIZE) {
                    let group: Vec<&Encoding> = batch.iter().map(|&i| &encodings[i]).collect();
                    let vectors = forward(bert, device, &group).map_err(model_error)?;
                    for (&i, v) in batch.iter().zip(vectors) {
                        out[i] = v;
                    }
                }
            }
        }
        Ok(out)
    }
}

/// One padded batch through candle's encoder, mean-pooled and normalised.
fn forward(
    bert: &BertModel,
    device: &Device,
    batch: &[&Encoding],
) -> candle_core::Result<Vec<Vec<f32>>> {
    let rows = batch.len();
    let width = batch.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
    let mut ids = vec![0u32; rows * width];
    let mut mask = vec![0u32; rows * width];
    for (r, enc) in batch.iter().enumerate() {
        let n = enc.len();
        ids[r * width..r * width + n].copy_from_slice(enc.get_ids());
        mask[r * width..r * width + n].copy_from_slice(enc.get_attention_mask());
    }
    let ids = Tensor::from_vec(ids, (rows, width), device)?;
    let mask = Tensor::from_vec(mask, (rows, width), device)?;
    let type_ids = ids.zeros_like()?;
    let hidden = bert.forward(&ids, &type_ids, Some(&mask))?; // (rows, width, dim)

    // Mean over the tokens the mask keeps.
    let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (rows, width, 1)
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // (rows, dim)
    let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?; // (rows, 1)
    let mean = summed.broadcast_div(&counts)?;
    // L2 normalisation (torch.nn.functional.normalize: x / max(‖x‖, 1e-12)).
    let norms = mean
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12f32, f32::MAX)?;
    mean.broadcast_div(&norms)?.to_vec2::<f32>()
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn name(&self) -> &str {
        &self.name
    }

    fn dimension(&self) -> Option<usize> {
        Some(self.dimension)
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let model = Arc::clone(&self.model);
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || model.embed(&texts))
            .await
            .map_err(|e| Error::internal(format!("local embedder task failed: {e}")))?
    }
}

/// The encoder without padding: the word pieces of every text of a batch
/// are packed into one `(tokens, hidden)` matrix, so the dense layers are
/// single matrix products (candle's `gemm`, all cores) and attention runs
/// per text over its own tokens only — which is what the attention mask
/// computes (a masked key gets `exp(f32::MIN)` = 0 weight), without the
/// padded rows. Bias, residual, layer norm and activation are fused passes
/// over rows, parallel (rayon) and vectorised (pulp picks AVX2/AVX-512 at
/// run time); softmax uses a polynomial `exp` and the exact GELU a rational
/// `erf` (relative error < 4e-7 and absolute error < 1e-6 in f32; the unit
/// test checks both), so the vectors equal candle's `BertModel`'s to float32
/// rounding (and sentence-transformers': `tests/local.rs`).
mod fast {
    use candle_core::{bail, Device, Result, Storage, Tensor};
    use candle_nn::VarBuilder;
    use candle_transformers::models::bert::{Config, HiddenAct};
    use rayon::prelude::*;

    use strata_bf16::PackedBf16;

    /// Rows per task of the row-wise passes.
    const ROWS_PER_TASK: usize = 64;

    pub(super) struct FastBert {
        arch: pulp::Arch,
        hidden: usize,
        heads: usize,
        head_dim: usize,
        intermediate: usize,
        max_positions: usize,
        eps: f32,
        act: HiddenAct,
        word: Vec<f32>,
        position: Vec<f32>,
        token_type: Vec<f32>,
        norm: Norm,
        layers: Vec<Layer>,
    }

    struct Norm {
        weight: Vec<f32>,
        bias: Vec<f32>,
    }

    /// One encoder layer; the weight matrices are stored `(in, out)`.
    struct Layer {
        qkv: Weight,
        qkv_bias: Vec<f32>,
        attn_out: Weight,
        attn_out_bias: Vec<f32>,
        attn_norm: Norm,
        up: Weight,
        up_bias: Vec<f32>,
        down: Weight,
        down_bias: Vec<f32>,
        out_norm: Norm,
    }

    /// A weight matrix `(in, out)`: f32 for candle's `gemm`, or packed
    /// bf16 for [`strata_bf16`].
    enum Weight {
        F32(Tensor),
        Bf16(PackedBf16),
    }

    impl Weight {
        fn new(w: Tensor, bf16: bool) -> Result<Self> {
            if !bf16 {
                return Ok(Weight::F32(w));
            }
            let (k, n) = w.dims2()?;
            with_data(&w, |data| Weight::Bf16(PackedBf16::pack(data, k, n)))
        }

        /// `x · w`.
        fn product(&self, x: &Tensor) -> Result<Tensor> {
            match self {
                Weight::F32(w) => x.matmul(w),
                Weight::Bf16(w) => {
                    let rows = x.dim(0)?;
                    let out = with_data(x, |x| w.matmul(x))?;
                    Tensor::from_vec(out, (rows, w.n()), &Device::Cpu)
                }
            }
        }
    }

    fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
        t.flatten_all()?.to_vec1::<f32>()
    }

    fn norm(vb: &VarBuilder, size: usize) -> Result<Norm> {
        let vb = vb.pp("LayerNorm");
        Ok(Norm {
            weight: to_vec(&vb.get(size, "weight")?)?,
            bias: to_vec(&vb.get(size, "bias")?)?,
        })
    }

    /// A linear layer's `(out, in)` weight as an `(in, out)` matrix, and its bias.
    fn linear(vbs: &[VarBuilder], inp: usize, out: usize) -> Result<(Tensor, Vec<f32>)> {
        let mut ws = Vec::new();
        let mut bs = Vec::new();
        for vb in vbs {
            ws.push(vb.get((out, inp), "weight")?);
            bs.extend(to_vec(&vb.get(out, "bias")?)?);
        }
        let w = Tensor::cat(&ws, 0)?.t()?.contiguous()?;
        Ok((w, bs))
    }

    /// Runs `f` on the tensor's contiguous f32 data.
    fn with_data<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
        let (storage, layout) = t.storage_and_layout();
        let Storage::Cpu(cpu) = &*storage else {
            bail!("the fast BERT runs on the CPU only")
        };
        let Some((from, to)) = layout.contiguous_offsets() else {
            bail!("the fast BERT needs contiguous tensors")
        };
        Ok(f(&cpu.as_slice::<f32>()?[from..to]))
    }

    impl FastBert {
        /// Whether this engine computes `config`'s model.
        pub(super) fn supports(config: &Config) -> bool {
            config.num_attention_heads > 0
                && config
                    .hidden_size
                    .is_multiple_of(config.num_attention_heads)
                && config.type_vocab_size > 0
        }

        /// Loads the weights; with `bf16` the matrix products run in
        /// bfloat16 ([`strata_bf16`]; the caller checks the CPU).
        pub(super) fn load(vb: &VarBuilder, config: &Config, bf16: bool) -> Result<Self> {
            let probe = "embeddings.word_embeddings.weight";
            let mut roots = vec![vb.clone(), vb.pp("bert")];
            if let Some(t) = &config.model_type {
                roots.push(vb.pp(t));
            }
            let vb = roots
                .into_iter()
                .find(|v| v.contains_tensor(probe))
                .unwrap_or_else(|| vb.clone());
            let (h, i) = (config.hidden_size, config.intermediate_size);
            let emb = vb.pp("embeddings");
            let word = to_vec(
                &emb.pp("word_embeddings")
                    .get((config.vocab_size, h), "weight")?,
            )?;
            let position = to_vec(
                &emb.pp("position_embeddings")
                    .get((config.max_position_embeddings, h), "weight")?,
            )?;
            let token_type = to_vec(
                &emb.pp("token_type_embeddings")
                    .get((config.type_vocab_size, h), "weight")?,
            )?;
            let norm_e = norm(&emb, h)?;
            let mut layers = Vec::with_capacity(config.num_hidden_layers);
            for n in 0..config.num_hidden_layers {
                let l = vb.pp(format!("encoder.layer.{n}"));
                let att = l.pp("attention");
                let s = att.pp("self");
                let (qkv, qkv_bias) = linear(&[s.pp("query"), s.pp("key"), s.pp("value")], h, h)?;
                let (attn_out, attn_out_bias) = linear(&[att.pp("output").pp("dense")], h, h)?;
                let (up, up_bias) = linear(&[l.pp("intermediate").pp("dense")], h, i)?;
                let (down, down_bias) = linear(&[l.pp("output").pp("dense")], i, h)?;
                layers.push(Layer {
                    qkv: Weight::new(qkv, bf16)?,
                    qkv_bias,
                    attn_out: Weight::new(attn_out, bf16)?,
                    attn_out_bias,
                    attn_norm: norm(&att.pp("output"), h)?,
                    up: Weight::new(up, bf16)?,
                    up_bias,
                    down: Weight::new(down, bf16)?,
                    down_bias,
                    out_norm: norm(&l.pp("output"), h)?,
                });
            }
            Ok(FastBert {
                arch: pulp::Arch::new(),
                hidden: h,
                heads: config.num_attention_heads,
                head_dim: h / config.num_attention_heads,
                intermediate: i,
                max_positions: config.max_position_embeddings,
                eps: config.layer_norm_eps as f32,
                act: config.hidden_act,
                word,
                position,
                token_type: token_type[..h].to_vec(),
                norm: norm_e,
                layers,
            })
        }

        /// Mean-pooled, L2-normalised vectors of the texts' word pieces
        /// (each at most `max_position_embeddings` long; the tokenizer
        /// truncates before).
        pub(super) fn embed(&self, texts: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
            let h = self.hidden;
            let lens: Vec<usize> = texts
                .iter()
                .map(|t| t.len().min(self.max_positions))
                .collect();
            let total: usize = lens.iter().sum();
            if total == 0 {
                return Ok(vec![vec![0.0; h]; texts.len()]);
            }
            let vocab = self.word.len() / h;
            let mut x = Vec::with_capacity(total * h);
            for (ids, &len) in texts.iter().zip(&lens) {
                for (p, &id) in ids[..len].iter().enumerate() {
                    let id = id as usize;
                    if id >= vocab {
                        bail!("word piece id {id} is outside the vocabulary of {vocab}");
                    }
                    let w = &self.word[id * h..(id + 1) * h];
                    let pos = &self.position[p * h..(p + 1) * h];
                    x.extend(
                        w.iter()
                            .zip(&self.token_type)
                            .zip(pos)
                            .map(|((w, t), p)| (w + t) + p),
                    );
                }
            }
            x.par_chunks_mut(h * ROWS_PER_TASK).for_each(|rows| {
                self.arch.dispatch(Vectorized(NormRows {
                    rows,
                    h,
                    norm: &self.norm,
                    eps: self.eps,
                }))
            });
            let mut x = Tensor::from_vec(x, (total, h), &Device::Cpu)?;
            for layer in &self.layers {
                x = self.layer(layer, &x, &lens)?;
            }
            with_data(&x, |x| {
                let mut out = Vec::with_capacity(lens.len());
                let mut off = 0;
                for &len in &lens {
                    let mut v = vec![0f32; h];
                    for row in x[off * h..(off + len) * h].chunks_exact(h) {
                        for (a, b) in v.iter_mut().zip(row) {
                            *a += b;
                        }
                    }
                    let count = (len as f32).max(1e-9);
                    v.iter_mut().for_each(|a| *a /= count);
                    let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12);
                    v.iter_mut().for_each(|a| *a /= norm);
                    out.push(v);
                    off += len;
                }
                out
            })
        }

        fn layer(&self, l: &Layer, x: &Tensor, lens: &[usize]) -> Result<Tensor> {
            let (h, i) = (self.hidden, self.intermediate);
            let total = x.dim(0)?;
            let qkv = l.qkv.product(x)?;
            let ctx = with_data(&qkv, |qkv| self.attention(qkv, &l.qkv_bias, lens))?;
            let ctx = Tensor::from_vec(ctx, (total, h), &Device::Cpu)?;
            let a = l.attn_out.product(&ctx)?;
            let x1 = self.add_norm(&a, &l.attn_out_bias, x, &l.attn_norm)?;
            let up = l.up.product(&x1)?;
            let act = with_data(&up, |up| {
                let mut out = vec![0f32; up.len()];
                out.par_chunks_mut(i * ROWS_PER_TASK)
                    .zip(up.par_chunks(i * ROWS_PER_TASK))
                    .for_each(|(out, x)| {
                        self.arch.dispatch(Vectorized(BiasAct {
                            out,
                            x,
                            bias: &l.up_bias,
                            act: self.act,
                        }))
                    });
                out
            })?;
            let act = Tensor::from_vec(act, (total, i), &Device::Cpu)?;
            let down = l.down.product(&act)?;
            self.add_norm(&down, &l.down_bias, &x1, &l.out_norm)
        }

        /// `LayerNorm(y + bias + residual)`, row by row.
        fn add_norm(
            &self,
            y: &Tensor,
            bias: &[f32],
            residual: &Tensor,
            n: &Norm,
        ) -> Result<Tensor> {
            let h = self.hidden;
            let total = y.dim(0)?;
            let out = with_data(y, |y| {
                with_data(residual, |r| {
                    let mut out = vec![0f32; y.len()];
                    out.par_chunks_mut(h * ROWS_PER_TASK)
                        .zip(y.par_chunks(h * ROWS_PER_TASK))
                        .zip(r.par_chunks(h * ROWS_PER_TASK))
                        .for_each(|((out, y), residual)| {
                            self.arch.dispatch(Vectorized(AddNorm {
                                out,
                                y,
                                residual,
                                bias,
                                norm: n,
                                eps: self.eps,
                            }))
                        });
                    out
                })
            })??;
            Tensor::from_vec(out, (total, h), &Device::Cpu)
        }

        /// Multi-head self-attention of each text over its own tokens:
        /// `qkv` is `(tokens, 3 * hidden)` without bias; the result is
        /// `(tokens, hidden)`, heads side by side.
        fn attention(&self, qkv: &[f32], bias: &[f32], lens: &[usize]) -> Vec<f32> {
            let h = self.hidden;
            let total: usize = lens.iter().sum();
            let mut ctx = vec![0f32; total * h];
            let mut parts = Vec::with_capacity(lens.len());
            let mut rest = ctx.as_mut_slice();
            let mut off = 0;
            for &len in lens {
                let (mine, tail) = rest.split_at_mut(len * h);
                parts.push((&qkv[off * 3 * h..(off + len) * 3 * h], mine));
                rest = tail;
                off += len;
            }
            parts
                .into_par_iter()
                .for_each_init(Scratch::default, |scratch, (qkv, out)| {
                    self.arch.dispatch(Vectorized(Attend {
                        qkv,
                        bias,
                        h,
                        heads: self.heads,
                        head_dim: self.head_dim,
                        out,
                        scratch,
                    }))
                });
            ctx
        }
    }

    /// Work compiled for the CPU's vector extensions: pulp's dispatch
    /// inlines `run` into a function with those target features enabled (a
    /// closure's body would stay a separate function built for the baseline
    /// x86-64, SSE2 without FMA).
    trait Kernel {
        fn run(self);
    }

    struct Vectorized<K>(K);

    impl<K: Kernel> pulp::WithSimd for Vectorized<K> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _simd: S) {
            self.0.run()
        }
    }

    /// Layer norm of each row.
    struct NormRows<'a> {
        rows: &'a mut [f32],
        h: usize,
        norm: &'a Norm,
        eps: f32,
    }

    impl Kernel for NormRows<'_> {
        #[inline(always)]
        fn run(self) {
            for row in self.rows.chunks_exact_mut(self.h) {
                layer_norm(row, self.norm, self.eps);
            }
        }
    }

    /// `out = act(x + bias)`, row by row.
    struct BiasAct<'a> {
        out: &'a mut [f32],
        x: &'a [f32],
        bias: &'a [f32],
        act: HiddenAct,
    }

    impl Kernel for BiasAct<'_> {
        #[inline(always)]
        fn run(self) {
            let n = self.bias.len();
            for (o, x) in self.out.chunks_exact_mut(n).zip(self.x.chunks_exact(n)) {
                bias_act(o, x, self.bias, self.act);
            }
        }
    }

    /// `out = LayerNorm(y + bias + residual)`, row by row.
    struct AddNorm<'a> {
        out: &'a mut [f32],
        y: &'a [f32],
        residual: &'a [f32],
        bias: &'a [f32],
        norm: &'a Norm,
        eps: f32,
    }

    impl Kernel for AddNorm<'_> {
        #[inline(always)]
        fn run(self) {
            let h = self.bias.len();
            for ((o, y), r) in self
                .out
                .chunks_exact_mut(h)
                .zip(self.y.chunks_exact(h))
                .zip(self.residual.chunks_exact(h))
            {
                for (((o, y), b), r) in o.iter_mut().zip(y).zip(self.bias).zip(r) {
                    *o = (y + b) + r;
                }
                layer_norm(o, self.norm, self.eps);
            }
        }
    }

    /// Self-attention of one text.
    struct Attend<'a> {
        qkv: &'a [f32],
        bias: &'a [f32],
        h: usize,
        heads: usize,
        head_dim: usize,
        out: &'a mut [f32],
        scratch: &'a mut Scratch,
    }

    impl Kernel for Attend<'_> {
        #[inline(always)]
        fn run(self) {
            let Attend {
                qkv,
                bias,
                h,
                heads,
                head_dim,
                out,
                scratch,
            } = self;
            match head_dim {
                32 => attend::<32>(qkv, bias, h, heads, out, scratch),
                64 => attend::<64>(qkv, bias, h, heads, out, scratch),
                d => attend_any(qkv, bias, h, heads, d, out, scratch),
            }
        }
    }

    /// Per-thread buffers of [`Attend`].
    #[derive(Default)]
    struct Scratch {
        /// K of one head, transposed: `(d, padded len)`, zero-padded.
        keys_t: Vec<f32>,
        /// V of one head: `(len, d)`.
        values: Vec<f32>,
        /// Scores of a block of query rows: `(rows, padded len)`.
        scores: Vec<f32>,
        /// One query row (the generic path).
        query: Vec<f32>,
    }

    /// Score columns per register block (one AVX-512 vector).
    const LANES: usize = 16;

    impl Scratch {
        /// K (transposed, rows padded to `lp`) and V of one head, bias added.
        #[inline(always)]
        fn load_head(
            &mut self,
            qkv: &[f32],
            bias: &[f32],
            h: usize,
            head: usize,
            d: usize,
            lp: usize,
        ) {
            self.keys_t.clear();
            self.keys_t.resize(d * lp, 0.0);
            self.values.clear();
            let kb = &bias[h + head * d..h + (head + 1) * d];
            let vb = &bias[2 * h + head * d..2 * h + (head + 1) * d];
            for (j, row) in qkv.chunks_exact(3 * h).enumerate() {
                let k = &row[h + head * d..h + (head + 1) * d];
                for (c, (k, b)) in k.iter().zip(kb).enumerate() {
                    self.keys_t[c * lp + j] = k + b;
                }
                let v = &row[2 * h + head * d..2 * h + (head + 1) * d];
                self.values.extend(v.iter().zip(vb).map(|(v, b)| v + b));
            }
        }
    }

    /// Attention of one text, head size `D` known at compile time: query
    /// rows go in blocks of 4 so that each loaded key or value vector
    /// serves four rows, and the accumulators stay in registers.
    #[inline(always)]
    fn attend<const D: usize>(
        qkv: &[f32],
        bias: &[f32],
        h: usize,
        heads: usize,
        out: &mut [f32],
        s: &mut Scratch,
    ) {
        let len = qkv.len() / (3 * h);
        let lp = len.div_ceil(LANES) * LANES;
        for head in 0..heads {
            s.load_head(qkv, bias, h, head, D, lp);
            let mut i = 0;
            while i + 4 <= len {
                attend_rows::<D, 4>(qkv, bias, h, head, i, len, lp, out, s);
                i += 4;
            }
            while i < len {
                attend_rows::<D, 1>(qkv, bias, h, head, i, len, lp, out, s);
                i += 1;
            }
        }
    }

    /// Query rows `i0..i0 + R` of one head.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn attend_rows<const D: usize, const R: usize>(
        qkv: &[f32],
        bias: &[f32],
        h: usize,
        head: usize,
        i0: usize,
        len: usize,
        lp: usize,
        out: &mut [f32],
        s: &mut Scratch,
    ) {
        let scale = 1.0 / (D as f32).sqrt();
        let qb = &bias[head * D..(head + 1) * D];
        let mut q = [[0f32; D]; R];
        for (r, q) in q.iter_mut().enumerate() {
            let row = &qkv[(i0 + r) * 3 * h + head * D..][..D];
            for ((q, x), b) in q.iter_mut().zip(row).zip(qb) {
                *q = (x + b) * scale;
            }
        }
        s.scores.clear();
        s.scores.resize(R * lp, 0.0);
        let blocks = lp / LANES;
        let (keys, _) = s.keys_t.as_chunks::<LANES>();
        for jb in 0..blocks {
            let mut acc = [[0f32; LANES]; R];
            for (c, k) in keys.iter().skip(jb).step_by(blocks).take(D).enumerate() {
                for (acc, q) in acc.iter_mut().zip(&q) {
                    let qc = q[c];
                    for (a, k) in acc.iter_mut().zip(k) {
                        *a = qc.mul_add(*k, *a);
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                s.scores[r * lp + jb * LANES..][..LANES].copy_from_slice(acc);
            }
        }
        for r in 0..R {
            softmax(&mut s.scores[r * lp..r * lp + len]);
        }
        let (values, _) = s.values.as_chunks::<D>();
        let mut acc = [[0f32; D]; R];
        for (j, v) in values.iter().enumerate() {
            for (r, acc) in acc.iter_mut().enumerate() {
                let p = s.scores[r * lp + j];
                for (a, v) in acc.iter_mut().zip(v) {
                    *a = p.mul_add(*v, *a);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            out[(i0 + r) * h + head * D..][..D].copy_from_slice(acc);
        }
    }

    /// Attention of one text for any head size (one query row at a time).
    #[inline(always)]
    fn attend_any(
        qkv: &[f32],
        bias: &[f32],
        h: usize,
        heads: usize,
        d: usize,
        out: &mut [f32],
        s: &mut Scratch,
    ) {
        let len = qkv.len() / (3 * h);
        let scale = 1.0 / (d as f32).sqrt();
        for head in 0..heads {
            s.load_head(qkv, bias, h, head, d, len);
            let qb = &bias[head * d..(head + 1) * d];
            for (i, row) in qkv.chunks_exact(3 * h).enumerate() {
                s.query.clear();
                s.query.extend(
                    row[head * d..(head + 1) * d]
                        .iter()
                        .zip(qb)
                        .map(|(q, b)| (q + b) * scale),
                );
                s.scores.clear();
                s.scores.resize(len, 0.0);
                for (c, &qc) in s.query.iter().enumerate() {
                    let k = &s.keys_t[c * len..(c + 1) * len];
                    for (x, k) in s.scores.iter_mut().zip(k) {
                        *x = qc.mul_add(*k, *x);
                    }
                }
                softmax(&mut s.scores);
                let acc = &mut out[i * h + head * d..i * h + (head + 1) * d];
                for (p, v) in s.scores.iter().zip(s.values.chunks_exact(d)) {
                    for (a, v) in acc.iter_mut().zip(v) {
                        *a = p.mul_add(*v, *a);
                    }
                }
            }
        }
    }

    /// Sum of `xs` in 16 lanes (vectorisable, unlike a sequential sum).
    #[inline(always)]
    fn lane_sum(xs: &[f32]) -> f32 {
        let mut acc = [0f32; 16];
        let chunks = xs.chunks_exact(16);
        let tail = chunks.remainder();
        for c in chunks {
            for (a, x) in acc.iter_mut().zip(c) {
                *a += x;
            }
        }
        acc.iter().sum::<f32>() + tail.iter().sum::<f32>()
    }

    #[inline(always)]
    fn lane_max(xs: &[f32]) -> f32 {
        let mut acc = [f32::NEG_INFINITY; 16];
        let chunks = xs.chunks_exact(16);
        let tail = chunks.remainder();
        for c in chunks {
            for (a, &x) in acc.iter_mut().zip(c) {
                *a = if x > *a { x } else { *a };
            }
        }
        acc.iter()
            .chain(tail)
            .fold(f32::NEG_INFINITY, |a, &x| a.max(x))
    }

    #[inline(always)]
    fn softmax(row: &mut [f32]) {
        let max = lane_max(row);
        for x in row.iter_mut() {
            *x = exp(*x - max);
        }
        let inv = 1.0 / lane_sum(row);
        for x in row.iter_mut() {
            *x *= inv;
        }
    }

    #[inline(always)]
    fn layer_norm(row: &mut [f32], n: &Norm, eps: f32) {
        let len = row.len() as f32;
        let mean = lane_sum(row) / len;
        let mut acc = [0f32; 16];
        let chunks = row.chunks_exact(16);
        let tail = chunks.remainder();
        for c in chunks {
            for (a, x) in acc.iter_mut().zip(c) {
                *a += (x - mean) * (x - mean);
            }
        }
        let var = (acc.iter().sum::<f32>()
            + tail.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>())
            / len;
        let inv = 1.0 / (var + eps).sqrt();
        for ((x, w), b) in row.iter_mut().zip(&n.weight).zip(&n.bias) {
            *x = (*x - mean) * inv * w + b;
        }
    }

    #[inline(always)]
    fn bias_act(out: &mut [f32], x: &[f32], bias: &[f32], act: HiddenAct) {
        match act {
            HiddenAct::Gelu => {
                for ((o, x), b) in out.iter_mut().zip(x).zip(bias) {
                    let v = x + b;
                    *o = 0.5 * v * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2));
                }
            }
            HiddenAct::GeluApproximate => {
                for ((o, x), b) in out.iter_mut().zip(x).zip(bias) {
                    let v = x + b;
                    let inner = (2.0 / std::f32::consts::PI).sqrt() * (v + 0.044715 * v * v * v);
                    *o = 0.5 * v * (1.0 + inner.tanh());
                }
            }
            HiddenAct::Relu => {
                for ((o, x), b) in out.iter_mut().zip(x).zip(bias) {
                    *o = (x + b).max(0.0);
                }
            }
        }
    }

    /// `e^x` for f32 (Cephes `expf`: range reduction by ln 2 and a degree-6
    /// polynomial; within 2 ulp), branch-free so that it vectorises.
    #[inline(always)]
    pub(super) fn exp(x: f32) -> f32 {
        let x = x.clamp(-87.0, 88.0);
        let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
        let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
        let mut p = 1.987_569_1e-4f32;
        p = p * r + 1.398_199_9e-3;
        p = p * r + 8.333_452e-3;
        p = p * r + 4.166_579_6e-2;
        p = p * r + 1.666_666_5e-1;
        p = p * r + 0.5;
        let y = p * r * r + r + 1.0;
        // 2^n without a float-to-int cast (Rust's saturating `as` does not
        // vectorise well): n + 127 lands in the low mantissa bits of
        // 2^23 + n + 127, and moves from there to the exponent field.
        let biased = (n + (127.0 + 8_388_608.0)).to_bits() & 0x7f_ffff;
        y * f32::from_bits(biased << 23)
    }

    /// The error function for f32 (the rational approximation of Eigen and
    /// XLA: 6.5e-8 from the exact value in exact arithmetic, < 5e-7 evaluated
    /// in f32), branch-free.
    #[inline(always)]
    pub(super) fn erf(x: f32) -> f32 {
        let x = x.clamp(-4.0, 4.0);
        let x2 = x * x;
        let mut p = -2.726_142_3e-10f32;
        p = p * x2 + 2.770_681_4e-8;
        p = p * x2 + -2.101_024e-6;
        p = p * x2 + -5.692_506_4e-5;
        p = p * x2 + -7.349_906_3e-4;
        p = p * x2 + -2.954_600_1e-3;
        p = p * x2 + -1.609_603_3e-2;
        let mut q = -1.456_607_2e-5f32;
        q = q * x2 + -2.133_740_6e-4;
        q = q * x2 + -1.682_827e-3;
        q = q * x2 + -7.373_329_3e-3;
        q = q * x2 + -1.426_474e-2;
        x * p / q
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn exp_and_erf_are_close_to_libm() {
            let mut worst_exp = 0f64;
            let mut worst_erf = 0f64;
            for i in -200_000..=200_000 {
                let x = i as f32 / 2000.0; // -100 ..= 100
                let e = (x as f64).exp();
                if x > -87.0 && x < 88.0 {
                    worst_exp = worst_exp.max(((super::exp(x) as f64) - e).abs() / e);
                }
                let x = x / 10.0; // -10 ..= 10
                let r = erf_ref(x as f64);
                worst_erf = worst_erf.max(((super::erf(x) as f64) - r).abs());
            }
            assert!(worst_exp < 4e-7, "exp relative error {worst_exp}");
            assert!(worst_erf < 1e-6, "erf absolute error {worst_erf}");
        }

        /// erf in f64 by its Maclaurin series (|x| <= 3) or 1 - the
        /// continued fraction of erfc (|x| > 3).
        fn erf_ref(x: f64) -> f64 {
            let a = x.abs();
            let v = if a <= 3.0 {
                let mut term = a;
                let mut sum = a;
                let mut n = 0.0;
                while term.abs() > 1e-17 * sum.abs().max(1e-300) {
                    n += 1.0;
                    term *= -a * a / n;
                    sum += term / (2.0 * n + 1.0);
                }
                sum * 2.0 / std::f64::consts::PI.sqrt()
            } else {
                let mut f = 0.0;
                for k in (1..60).rev() {
                    f = (k as f64 / 2.0) / (a + f);
                }
                1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / (a + f)
            };
            v.copysign(x)
        }
    }
}
