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

/// A sentence-transformer loaded from a model folder.
#[derive(Clone)]
pub struct LocalEmbedder {
    name: String,
    dimension: usize,
    model: Arc<LoadedModel>,
}

struct LoadedModel {
    bert: BertModel,
    tokenizer: Tokenizer,
    device: Device,
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
        let bert = BertModel::load(vb, &config).map_err(|e| {
            load_error(
                dir,
                format_args!("model.safetensors does not fit config.json: {e}"),
            )
        })?;

        let folder = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        Ok(LocalEmbedder {
            name: format!("local:{folder}"),
            dimension: config.hidden_size,
            model: Arc::new(LoadedModel {
                bert,
                tokenizer,
                device,
            }),
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
        for batch in order.chunks(LOCAL_BATCH_SIZE) {
            let group: Vec<&Encoding> = batch.iter().map(|&i| &encodings[i]).collect();
            let vectors = self.forward(&group).map_err(model_error)?;
            for (&i, v) in batch.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// One padded batch through the encoder, mean-pooled and normalised.
    fn forward(&self, batch: &[&Encoding]) -> candle_core::Result<Vec<Vec<f32>>> {
        let rows = batch.len();
        let width = batch.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
        let mut ids = vec![0u32; rows * width];
        let mut mask = vec![0u32; rows * width];
        for (r, enc) in batch.iter().enumerate() {
            let n = enc.len();
            ids[r * width..r * width + n].copy_from_slice(enc.get_ids());
            mask[r * width..r * width + n].copy_from_slice(enc.get_attention_mask());
        }
        let ids = Tensor::from_vec(ids, (rows, width), &self.device)?;
        let mask = Tensor::from_vec(mask, (rows, width), &self.device)?;
        let type_ids = ids.zeros_like()?;
        let hidden = self.bert.forward(&ids, &type_ids, Some(&mask))?; // (rows, width, dim)

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
