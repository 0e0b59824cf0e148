#![cfg(not(target_arch = "wasm32"))]
//! Looking inside (`llama2 --inspect`): every number it writes agrees with an independent
//! reference, a plain f64 forward pass written here from docs/llama2c.md (int8 models
//! dequantized, their activations quantized as runq.c does), to 1e-5; attention rows sum to
//! 1; and the ids are those of the same run without --inspect. Greedy and sampled, fp32 and
//! int8.
//!
//! int8 activations are rounded to whole steps: where a value lies within a hair of half a
//! step, the engine's f32 and the reference's f64 may round it apart, and from there on (the KV
//! cache carries it) their numbers differ by the size of a step, not of a rounding error. The
//! reference watches how close it comes (in steps); positions from the first such near-tie on
//! are not compared, and enough of them must be.

mod common;

use std::process::Command;

use llama2_wasm::checkpoint::Matrix;
use llama2_wasm::config::Weight;
use llama2_wasm::inspect::{Ablate, Ablation};
use llama2_wasm::{Checkpoint, Config, Format};
use serde_json::Value;

const LLAMA2: &str = env!("CARGO_BIN_EXE_llama2");

/// The model in f64: every matrix dequantized, and its own KV cache.
struct Reference {
    c: Config,
    group_size: Option<usize>,
    embedding: Vec<f64>,
    layers: Vec<[Vec<f64>; 7]>, // wq wk wv wo w1 w2 w3
    rms_att: Vec<Vec<f64>>,
    rms_ffn: Vec<Vec<f64>>,
    rms_final: Vec<f64>,
    classifier: Vec<f64>,
    keys: Vec<Vec<f64>>,   // per layer: (pos, kv_dim)
    values: Vec<Vec<f64>>, // per layer
    /// The closest any quantized activation came to half a step, in units of how far the
    /// engine's f32 may be from the reference there.
    margin: std::cell::Cell<f64>,
}

/// How far apart the engine's f32 activations and the reference's f64 ones may be, relative
/// (rounding errors of a few f32 operations per value, ~1e-7, with room to spare).
const RELATIVE_ERROR: f64 = 2e-6;
/// Closer to half a step than this many of those errors, the two may round apart.
const NEAR_TIE: f64 = 1.0;

fn dequantized(m: Matrix<'_>) -> Vec<f64> {
    match m {
        Matrix::F32(w) => w.iter().map(|&v| v as f64).collect(),
        Matrix::Q8 { q, s, group_size } => {
            q.iter().enumerate().map(|(i, &v)| v as f64 * s[i / group_size] as f64).collect()
        }
    }
}

impl Reference {
    fn new(ck: &Checkpoint) -> Reference {
        let c = *ck.config();
        let group_size = match ck.format() {
            Format::V2 { group_size } => Some(group_size),
            _ => None,
        };
        let ws =
            [Weight::Wq, Weight::Wk, Weight::Wv, Weight::Wo, Weight::W1, Weight::W2, Weight::W3];
        let f64s = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
        Reference {
            c,
            group_size,
            embedding: dequantized(ck.matrix(Weight::TokenEmbedding, 0)),
            layers: (0..c.n_layers).map(|l| ws.map(|w| dequantized(ck.matrix(w, l)))).collect(),
            rms_att: (0..c.n_layers).map(|l| f64s(ck.rms_att(l))).collect(),
            rms_ffn: (0..c.n_layers).map(|l| f64s(ck.rms_ffn(l))).collect(),
            rms_final: f64s(ck.rms_final()),
            classifier: dequantized(ck.matrix(Weight::Classifier, 0)),
            keys: vec![Vec::new(); c.n_layers],
            values: vec![Vec::new(); c.n_layers],
            margin: std::cell::Cell::new(f64::INFINITY),
        }
    }

    /// `w · x`; int8 models see `x` as runq.c makes it: quantized per group (C `round`).
    fn matmul(&self, w: &[f64], x: &[f64]) -> Vec<f64> {
        let x = match self.group_size {
            None => x.to_vec(),
            Some(gs) => {
                let mut q = Vec::with_capacity(x.len());
                for group in x.chunks(gs) {
                    let group: Vec<f32> = group.iter().map(|&v| v as f32).collect();
                    let scale = group.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
                    for &v in &group {
                        let steps = (v as f64 / scale as f64).abs();
                        // How far from half a step, against how far f32 may be off there.
                        let doubt = (steps.fract() - 0.5).abs() / (steps * RELATIVE_ERROR + 1e-6);
                        self.margin.set(self.margin.get().min(doubt));
                    }
                    q.extend(group.iter().map(|&v| (v / scale).round() as f64 * scale as f64));
                }
                q
            }
        };
        w.chunks_exact(x.len()).map(|row| row.iter().zip(&x).map(|(a, b)| a * b).sum()).collect()
    }

    fn rmsnorm(x: &[f64], w: &[f64]) -> Vec<f64> {
        let ss = 1.0 / (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64 + 1e-5).sqrt();
        x.iter().zip(w).map(|(v, w)| w * ss * v).collect()
    }

    fn softmax(x: &mut [f64]) {
        let max = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = x
            .iter_mut()
            .map(|v| {
                *v = (*v - max).exp();
                *v
            })
            .sum();
        x.iter_mut().for_each(|v| *v /= sum);
    }

    /// One position: (next-token probabilities, attention `(layer, head, pos + 1)`).
    fn forward(&mut self, token: u32, pos: usize) -> (Vec<f64>, Vec<f64>) {
        let t = self.trace(token, pos, &Ablation::NONE);
        let mut probs = t.logits;
        Self::softmax(&mut probs);
        let attention = t.layers.into_iter().flat_map(|l| l["attention"].clone()).collect();
        (probs, attention)
    }

    /// One position with what `ablation` switches off, every vector kept by `--trace`'s names.
    fn trace(&mut self, token: u32, pos: usize, ablation: &Ablation) -> RefTrace {
        let c = self.c;
        let (dim, hs, kv_dim) = (c.dim, c.head_size(), c.kv_dim());
        let mut x = self.embedding[token as usize * dim..(token as usize + 1) * dim].to_vec();
        let embedding = x.clone();
        let mut layers = Vec::new();
        for l in 0..c.n_layers {
            let mut kept = std::collections::BTreeMap::new();
            let xb = Self::rmsnorm(&x, &self.rms_att[l]);
            let [wq, wk, wv, wo, w1, w2, w3] = &self.layers[l];
            let (mut q, mut k, v) =
                (self.matmul(wq, &xb), self.matmul(wk, &xb), self.matmul(wv, &xb));
            kept.insert("attn_norm", xb);
            for i in (0..dim).step_by(2) {
                let freq = 1.0 / 10000f64.powf((i % hs) as f64 / hs as f64);
                let (sin, cos) = (pos as f64 * freq).sin_cos();
                let rotate = |v: &mut [f64]| {
                    let (a, b) = (v[i], v[i + 1]);
                    v[i] = a * cos - b * sin;
                    v[i + 1] = a * sin + b * cos;
                };
                rotate(&mut q);
                if i < kv_dim {
                    rotate(&mut k);
                }
            }
            self.keys[l].truncate(pos * kv_dim);
            self.values[l].truncate(pos * kv_dim);
            self.keys[l].extend(&k);
            self.values[l].extend(&v);
            let mut out = vec![0.0; dim];
            let mut attention = Vec::new();
            for h in 0..c.n_heads {
                let kv = (h / c.kv_mul()) * hs;
                let qh = &q[h * hs..(h + 1) * hs];
                let mut att: Vec<f64> = (0..=pos)
                    .map(|t| {
                        qh.iter()
                            .zip(&self.keys[l][t * kv_dim + kv..])
                            .map(|(a, b)| a * b)
                            .sum::<f64>()
                            / (hs as f64).sqrt()
                    })
                    .collect();
                Self::softmax(&mut att);
                if !ablation.head(l, h) {
                    for (t, a) in att.iter().enumerate() {
                        for (o, v) in out[h * hs..(h + 1) * hs]
                            .iter_mut()
                            .zip(&self.values[l][t * kv_dim + kv..])
                        {
                            *o += a * v;
                        }
                    }
                }
                attention.extend(att);
            }
            let mut attn_out = self.matmul(wo, &out);
            if ablation.attention(l) {
                attn_out.fill(0.0);
            }
            for (x, d) in x.iter_mut().zip(&attn_out) {
                *x += d;
            }
            kept.extend([("q", q), ("k", k), ("v", v), ("attention", attention)]);
            kept.extend([("heads_out", out), ("attn_out", attn_out), ("residual_attn", x.clone())]);
            let xb = Self::rmsnorm(&x, &self.rms_ffn[l]);
            let (h1, h3) = (self.matmul(w1, &xb), self.matmul(w3, &xb));
            let hb: Vec<f64> =
                h1.iter().zip(&h3).map(|(a, b)| a / (1.0 + (-a).exp()) * b).collect();
            let mut ffn_out = self.matmul(w2, &hb);
            if ablation.ffn(l) {
                ffn_out.fill(0.0);
            }
            for (x, d) in x.iter_mut().zip(&ffn_out) {
                *x += d;
            }
            kept.extend([("ffn_norm", xb), ("gate", hb), ("ffn_out", ffn_out)]);
            kept.insert("residual_ffn", x.clone());
            layers.push(kept);
        }
        let final_norm = Self::rmsnorm(&x, &self.rms_final);
        let logits = self.matmul(&self.classifier, &final_norm);
        RefTrace { embedding, layers, final_norm, logits }
    }
}

/// The reference's trace of one position (`--trace`'s names).
struct RefTrace {
    embedding: Vec<f64>,
    layers: Vec<std::collections::BTreeMap<&'static str, Vec<f64>>>,
    final_norm: Vec<f64>,
    logits: Vec<f64>,
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A generator of checkpoint `path` (named `model`) with the aidreams tokenizer `tok`.
fn generator(path: &std::path::Path, model: &str, tok: &std::path::Path) -> llama2_wasm::Generator {
    let checkpoint = Checkpoint::from_bytes(&std::fs::read(path).unwrap(), model).unwrap();
    let tokenizer =
        llama2_wasm::Tokenizer::from_bytes(&std::fs::read(tok).unwrap(), 512, "tok").unwrap();
    llama2_wasm::Generator::new(checkpoint, tokenizer).unwrap()
}

fn ids_of(args: &[&str]) -> String {
    let out = Command::new(LLAMA2).args(args).output().expect("run llama2");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn inspect_agrees_with_an_f64_reference_and_changes_no_id() {
    let dir = common::out_dir("inspect");
    for model in ["aidreams260K.bin", "aidreams260K-v2.bin"] {
        let (Some(path), Some(tok)) =
            (common::fixture(model), common::fixture("tok512-aidreams.bin"))
        else {
            return;
        };
        let checkpoint = Checkpoint::from_bytes(&std::fs::read(&path).unwrap(), model).unwrap();
        for (t, seed) in [("0", "1"), ("1", "42")] {
            let file = dir.join(format!("{model}-{t}.jsonl"));
            let base = [
                path.to_str().unwrap(),
                "-z",
                tok.to_str().unwrap(),
                "-t",
                t,
                "-s",
                seed,
                "-n",
                "40",
                "-i",
                "Once upon a time",
                "--ids",
            ];
            let plain = ids_of(&base);
            let inspected = ids_of(&[&base[..], &["--inspect", file.to_str().unwrap()]].concat());
            assert_eq!(inspected, plain, "{model} t={t}: --inspect changed the ids");
            // Split over threads, every number is the same bit for bit.
            for threads in ["2", "3"] {
                let split = dir.join(format!("{model}-{t}-{threads}.jsonl"));
                ids_of(
                    &[&base[..], &["--inspect", split.to_str().unwrap(), "--threads", threads]]
                        .concat(),
                );
                let same = std::fs::read(&split).unwrap() == std::fs::read(&file).unwrap();
                assert!(same, "{model} t={t}: --inspect over {threads} threads differs from one");
            }
            let ids: Vec<u32> = plain.split_whitespace().map(|v| v.parse().unwrap()).collect();

            let mut reference = Reference::new(&checkpoint);
            let lines: Vec<Value> = std::fs::read_to_string(&file)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(lines.len(), ids.len() - 1, "{model} t={t}: one line per forward pass");
            let (mut worst_p, mut worst_a, mut compared) = (0.0f64, 0.0f64, 0);
            for (pos, line) in lines.iter().enumerate() {
                assert_eq!(line["pos"], pos);
                assert_eq!(line["token"], ids[pos]);
                assert_eq!(line["id"], ids[pos + 1]);
                let (probs, attention) = reference.forward(ids[pos], pos);
                if reference.margin.get() < NEAR_TIE {
                    eprintln!("{model} t={t}: a near-tie at position {pos}; the positions from there on are not compared");
                    break;
                }
                compared += 1;
                let top = line["top"].as_array().unwrap();
                assert_eq!(top.len(), 10);
                for pair in top {
                    let (id, p) = (pair[0].as_u64().unwrap() as usize, pair[1].as_f64().unwrap());
                    worst_p = worst_p.max((p - probs[id]).abs());
                }
                worst_p = worst_p
                    .max((line["prob"].as_f64().unwrap() - probs[ids[pos + 1] as usize]).abs());
                let layers = line["attention"].as_array().unwrap();
                let mut at = 0;
                for layer in layers {
                    for head in layer.as_array().unwrap() {
                        let row: Vec<f64> =
                            head.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
                        assert_eq!(row.len(), pos + 1);
                        assert!(
                            (row.iter().sum::<f64>() - 1.0).abs() <= 1e-5,
                            "an attention row sums to {}",
                            row.iter().sum::<f64>()
                        );
                        for (w, r) in row.iter().zip(&attention[at..at + pos + 1]) {
                            worst_a = worst_a.max((w - r).abs());
                        }
                        at += pos + 1;
                    }
                }
            }
            eprintln!("{model} t={t}: {compared} positions; largest difference from the f64 reference: probability {worst_p:.2e}, attention {worst_a:.2e}");
            assert!(compared >= 8, "{model} t={t}: only {compared} positions compared");
            assert!(
                worst_p <= 1e-5 && worst_a <= 1e-5,
                "{model} t={t}: {worst_p:e} / {worst_a:e} past 1e-5"
            );
        }
    }
}

/// A branch (another token at a position already run, then the story goes on) gives the ids
/// of a story started from the ids before that position plus the token, and runs no pass over
/// those earlier positions (their KV cache is kept).
#[test]
fn a_branch_is_a_new_story_from_the_prefix_without_running_it_again() {
    use llama2_wasm::{Generator, Options, Step};
    for model in ["aidreams260K.bin", "aidreams260K-v2.bin"] {
        let (Some(path), Some(tok)) =
            (common::fixture(model), common::fixture("tok512-aidreams.bin"))
        else {
            return;
        };
        let load = || generator(&path, model, &tok);
        let run = |g: &mut Generator| while let Step::Piece(_) = g.next().unwrap() {};
        let text = |g: &mut Generator| {
            let mut text = String::new();
            while let Step::Piece(piece) = g.next().unwrap() {
                text.push_str(&piece);
            }
            text
        };
        for options in [
            Options { temperature: 0.0, topp: 0.9, seed: 1, steps: 60 },
            Options { temperature: 1.0, topp: 0.9, seed: 42, steps: 60 },
        ] {
            let mut story = load();
            story.start("Once upon a time", &options).unwrap();
            run(&mut story);
            let ids = story.ids().to_vec();
            let (pos, token) = (20, 300);
            assert_ne!(ids[pos], token);
            let before = story.model().positions_run();
            let fed = story.branch(pos, token).unwrap();
            let rest = text(&mut story);
            let after = story.model().positions_run() - before;

            let mut fresh = load();
            fresh.start_tokens(&[&ids[..pos], &[token]].concat(), &options).unwrap();
            let whole = text(&mut fresh);
            assert_eq!(story.ids(), fresh.ids(), "{model} t={}", options.temperature);
            // The fed token's text is the story's text at that token (the Inspect view's chip).
            assert!(!fed.is_empty(), "{model}: token {token} has text");
            assert!(
                whole.ends_with(&format!("{fed}{rest}")),
                "{model}: {fed:?} + {rest:?} ends {whole:?}"
            );
            // Only the positions from the branch on ran: one per id after it.
            assert_eq!(
                after,
                (story.ids().len() - 1 - pos) as u64,
                "{model}: the prefix ran again"
            );
        }
    }
}

/// `--trace` (every vector of one position's pass) agrees with the f64 reference to 1e-4 of
/// each vector's largest value, with and without `--ablate` (a head, an attention block, a
/// feed-forward block), fp32 and int8; over 2 and 3 threads it is the same file byte for byte.
/// An ablated part is exactly zero.
#[test]
fn trace_and_ablations_agree_with_an_f64_reference_over_any_threads() {
    let dir = common::out_dir("trace");
    for model in ["aidreams260K.bin", "aidreams260K-v2.bin"] {
        let (Some(path), Some(tok)) =
            (common::fixture(model), common::fixture("tok512-aidreams.bin"))
        else {
            return;
        };
        let checkpoint = Checkpoint::from_bytes(&std::fs::read(&path).unwrap(), model).unwrap();
        let c = *checkpoint.config();
        for ablate in [vec![], vec!["1:2", "0:attn", "2:ffn"]] {
            let switches: Vec<Ablate> = ablate.iter().map(|a| Ablate::parse(a).unwrap()).collect();
            let ablation = Ablation::new(&switches, &c).unwrap();
            let mut base: Vec<String> = [path.to_str().unwrap(), "-z", tok.to_str().unwrap()]
                .into_iter()
                .chain(["-t", "1", "-s", "42", "-n", "40", "-i", "Once upon a time", "--ids"])
                .map(String::from)
                .collect();
            for a in &ablate {
                base.extend(["--ablate".into(), a.to_string()]);
            }
            let args = |extra: &[&str]| -> Vec<String> {
                base.iter().cloned().chain(extra.iter().map(|s| s.to_string())).collect()
            };
            let plain = ids_of(&strs(&args(&[])));
            let ids: Vec<u32> = plain.split_whitespace().map(|v| v.parse().unwrap()).collect();
            // The reference runs the story's positions; the trace is of the last one before
            // an int8 near-tie (see the top of this file), at most position 24.
            let mut reference = Reference::new(&checkpoint);
            let mut traced = None;
            for (pos, &token) in ids.iter().enumerate().take(25) {
                let t = reference.trace(token, pos, &ablation);
                if reference.margin.get() < NEAR_TIE {
                    break;
                }
                traced = Some((pos, t));
            }
            let (pos, want) = traced.expect("a position before any near-tie");
            assert!(pos >= 4, "{model}: only {pos} positions before a near-tie");
            let file = dir.join(format!("{model}-{}.json", ablate.len()));
            let p = pos.to_string();
            let traced_ids =
                ids_of(&strs(&args(&["--trace", file.to_str().unwrap(), "--trace-pos", &p])));
            assert_eq!(traced_ids, plain, "{model}: --trace changed the ids");
            for threads in ["2", "3"] {
                let split = dir.join(format!("{model}-{}-{threads}.json", ablate.len()));
                let extra =
                    ["--trace", split.to_str().unwrap(), "--trace-pos", &p, "--threads", threads];
                assert_eq!(ids_of(&strs(&args(&extra))), plain, "{model}: {threads} threads");
                let same = std::fs::read(&split).unwrap() == std::fs::read(&file).unwrap();
                assert!(
                    same,
                    "{model} {ablate:?}: the trace over {threads} threads differs from one"
                );
            }
            let got: Value =
                serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            assert_eq!(
                (got["pos"].as_u64(), got["token"].as_u64()),
                (Some(pos as u64), Some(ids[pos] as u64))
            );
            let next = got["id"].as_u64();
            assert_eq!(next, Some(ids[pos + 1] as u64), "{model}: the token that came next");
            // "Once upon a time" is BOS and 12 tokens of this vocabulary.
            assert_eq!(got["prompt"].as_bool(), Some(pos + 1 < 13), "{model}: prompt");
            let mut worst = (0.0f64, String::new());
            let mut compare = |name: String, got: &Value, want: &[f64]| {
                let got: Vec<f64> = match got {
                    Value::Array(rows) if rows.first().is_some_and(Value::is_array) => rows
                        .iter()
                        .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
                        .collect(),
                    v => v.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect(),
                };
                assert_eq!(
                    got.len(),
                    want.len(),
                    "{model}: {name} has {} values, not {}",
                    got.len(),
                    want.len()
                );
                let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-12);
                let err =
                    got.iter().zip(want).fold(0.0f64, |m, (a, b)| m.max((a - b).abs())) / scale;
                if err > worst.0 {
                    worst = (err, name);
                }
            };
            compare("embedding".into(), &got["embedding"], &want.embedding);
            for (l, layer) in want.layers.iter().enumerate() {
                for (name, vector) in layer {
                    compare(format!("layers[{l}].{name}"), &got["layers"][l][name], vector);
                }
            }
            compare("final_norm".into(), &got["final_norm"], &want.final_norm);
            compare("logits".into(), &got["logits"], &want.logits);
            eprintln!(
                "{model} {ablate:?}: position {pos}, largest relative difference {:.2e} ({})",
                worst.0, worst.1
            );
            assert!(
                worst.0 <= 1e-4,
                "{model} {ablate:?}: {} is {:e} from the reference",
                worst.1,
                worst.0
            );
            // What is switched off is exactly zero.
            for switch in &switches {
                let hs = c.head_size();
                let zero =
                    |v: &Value| v.as_array().unwrap().iter().all(|v| v.as_f64() == Some(0.0));
                match *switch {
                    Ablate::Head { layer, head } => {
                        let out = got["layers"][layer]["heads_out"].as_array().unwrap();
                        assert!(out[head * hs..(head + 1) * hs]
                            .iter()
                            .all(|v| v.as_f64() == Some(0.0)));
                    }
                    Ablate::Attention { layer } => assert!(zero(&got["layers"][layer]["attn_out"])),
                    Ablate::Ffn { layer } => assert!(zero(&got["layers"][layer]["ffn_out"])),
                }
            }
        }
    }
}

/// `--lens-map` sums up the logit lens at every position: its entropy, KL to the last layer
/// and pinned probability agree with the same numbers worked out in f64 from the full lens
/// (`Generator::lens` with k = the vocabulary) at each position; the last layer's KL is 0; the
/// story's ids do not change; over 2 and 3 threads it is the same file byte for byte.
#[test]
fn the_lens_map_sums_up_the_lens_at_every_position_over_any_threads() {
    use llama2_wasm::link::block_on;
    use llama2_wasm::{Options, Step};
    let dir = common::out_dir("lens-map");
    let (Some(path), Some(tok)) =
        (common::fixture("aidreams260K.bin"), common::fixture("tok512-aidreams.bin"))
    else {
        return;
    };
    let mut story = generator(&path, "aidreams260K.bin", &tok);
    let options = Options { temperature: 1.0, topp: 0.9, seed: 42, steps: 40 };
    story.start("Once upon a time", &options).unwrap();
    while let Step::Piece(_) = story.next().unwrap() {}
    let ids = story.ids().to_vec();
    let pin = 300;
    let map = block_on(story.lens_map(Some(pin))).unwrap();
    assert_eq!(story.ids(), ids, "the map changed the story");
    let (layers, positions) = (map.layers, map.positions);
    assert_eq!((layers, positions), (story.config().n_layers, ids.len() - 1));
    let bits = std::f64::consts::LN_2;
    for pos in 0..positions {
        let full = block_on(story.lens(pos, 512)).unwrap();
        let dist = |l: usize| -> Vec<f64> {
            let mut p = vec![0.0; 512];
            for &(id, prob) in &full[l] {
                p[id as usize] = prob as f64;
            }
            p
        };
        let last = dist(layers - 1);
        for l in 0..layers {
            let p = dist(l);
            let entropy: f64 =
                p.iter().filter(|&&x| x > 0.0).map(|&x| -x * x.ln()).sum::<f64>() / bits;
            let kl: f64 = last
                .iter()
                .zip(&p)
                .filter(|&(&q, _)| q > 0.0)
                .map(|(&q, &x)| q * (q / x.max(1e-30)).ln())
                .sum::<f64>()
                / bits;
            let at = l * positions + pos;
            let near = |a: f32, b: f64, what: &str| {
                assert!(
                    (a as f64 - b).abs() < 2e-3 * (1.0 + b.abs()),
                    "{what} layer {l} pos {pos}: {a} vs {b}"
                )
            };
            near(map.entropy[at], entropy, "entropy");
            near(map.kl[at], kl, "kl");
            near(map.pinned[at], p[pin as usize], "pinned");
        }
        assert_eq!(map.kl[(layers - 1) * positions + pos], 0.0, "the last layer is the output");
    }
    let file = |threads: &str| {
        let out = dir.join(format!("map-{threads}.json"));
        let args = [
            path.to_str().unwrap(),
            "-z",
            tok.to_str().unwrap(),
            "-t",
            "1",
            "-s",
            "42",
            "-n",
            "40",
        ];
        let more = ["-i", "Once upon a time", "--lens-map", out.to_str().unwrap(), "--pin", "300"];
        ids_of(&[&args[..], &more[..], &["--threads", threads]].concat());
        std::fs::read_to_string(out).unwrap()
    };
    let one = file("1");
    let json: Value = serde_json::from_str(&one).unwrap();
    assert_eq!(json["entropy"][0][3].as_f64().unwrap() as f32, map.entropy[3]);
    assert_eq!(json["pinned"].as_array().unwrap().len(), layers);
    assert_eq!(file("2"), one);
    assert_eq!(file("3"), one);
}
