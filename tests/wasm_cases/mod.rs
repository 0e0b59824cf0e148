//! wasm-bindgen tests of the wasm `Engine` (src/wasm/), the surface www/engine/llama2.js drives.
//! They run in Node (tests/wasm_node.rs) and in headless Chrome (tests/wasm_browser.rs), from
//! the repo root, as `./build.sh test wasm` runs them:
//!
//!   wasm-pack test --node
//!   wasm-pack test --headless --chrome
//!
//! (wasm-bindgen-test picks Node or a browser per test binary, so each target has its own
//! three-line file and both include this module.) The golden files and models are embedded at
//! build time by build.rs (a test in wasm cannot read files); without them the tests say so and
//! pass, unless LLAMA2_REQUIRE_FIXTURES=1, where they fail. Any error while running a case
//! fails it.

use llama2_wasm::conformance::{first_difference, parse_cases, Case};
use llama2_wasm::wasm::{encode, warm_up, Engine, PENDING};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

mod fixtures {
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));
}

/// Says why a test checks nothing: a failure when the fixtures are required.
fn absent(what: &str) {
    let message = format!("{what} not found in {} (set LLAMA2_MODELS)", fixtures::MODELS_DIR);
    if fixtures::REQUIRED {
        panic!("{message}; LLAMA2_REQUIRE_FIXTURES=1 requires it");
    }
    console_log!("SKIP: {message}");
}

/// The embedded file `name`, or `None` (after saying why) when the fixtures are absent.
fn fixture(name: &str) -> Option<&'static [u8]> {
    let found = fixtures::FILES.iter().find(|(n, _)| *n == name).map(|(_, bytes)| *bytes);
    if found.is_none() {
        absent(name);
    }
    found
}

/// The parsed cases of an embedded golden file, or `None` when absent.
fn golden(json: Option<&str>, what: &str) -> Option<Vec<Case>> {
    let Some(json) = json else {
        absent(&format!("golden {what}"));
        return None;
    };
    Some(parse_cases(json).unwrap_or_else(|e| panic!("golden {what}: {e}")))
}

/// A JS error's message (and its kind, as `kind: message`).
fn message(err: impl Into<JsValue>) -> String {
    let err: JsValue = err.into();
    let kind = js_sys::Reflect::get(&err, &"kind".into()).ok().and_then(|k| k.as_string());
    let text: String = err.unchecked_into::<js_sys::Error>().message().into();
    format!("{}: {text}", kind.unwrap_or_default())
}

/// A model split over `shards` engines, driven here the way www/engine/llama2.js drives its workers
/// (but all in one thread, in lock step).
struct Cluster {
    engines: Vec<Engine>,
}

impl Cluster {
    /// Loads `model` + `tokenizer` over `shards` engines as llama2.js does: the header from
    /// the first bytes, then the file in chunks (each engine keeping its ranges), the KV
    /// cache at the largest context every shard can hold.
    fn load(model: &[u8], name: &str, tokenizer: &[u8], shards: u32) -> Result<Cluster, String> {
        let mut engines: Vec<Engine> = (0..shards).map(|_| Engine::new()).collect();
        let prefix = &model[..model.len().min(256)];
        for (k, engine) in engines.iter_mut().enumerate() {
            engine
                .begin_checkpoint(prefix, model.len() as f64, name.into(), k as u32, shards)
                .map_err(message)?;
            for (i, chunk) in model.chunks(4096 + 7).enumerate() {
                engine.write_checkpoint((i * (4096 + 7)) as f64, chunk).map_err(message)?;
            }
            engine.end_checkpoint().map_err(message)?;
        }
        let mut context = u32::MAX;
        for engine in &engines {
            context = context.min(engine.fit_context(0).map_err(message)?);
        }
        for engine in &mut engines {
            engine.set_context(context).map_err(message)?;
        }
        engines[0].load_tokenizer(tokenizer, "tokenizer.bin".into()).map_err(message)?;
        Ok(Cluster { engines })
    }

    fn leader(&mut self) -> &mut Engine {
        &mut self.engines[0]
    }

    /// The leader's next piece, exchanging between the engines wherever it waits.
    fn next(&mut self) -> Result<Option<String>, String> {
        loop {
            let piece = self.engines[0].generate_next().map_err(message)?;
            match self.engines[0].pending() {
                0 => return Ok(piece),
                code if code == PENDING.command => {
                    let command = self.engines[0].command();
                    for engine in &mut self.engines[1..] {
                        engine.serve(&command).map_err(message)?;
                    }
                }
                code => {
                    self.exchange(code == PENDING.gather_all);
                    for engine in &mut self.engines[1..] {
                        engine.poll().map_err(message)?;
                    }
                }
            }
        }
    }

    /// Copies every engine's outbox into the inboxes of the others (only the leader's when
    /// `everyone` is false), through wasm memory as JS does.
    fn exchange(&mut self, everyone: bool) {
        let memory = wasm_bindgen::memory().unchecked_into::<js_sys::WebAssembly::Memory>();
        // (Each view is made after the allocations before it: growing memory detaches views.)
        let parts: Vec<Vec<f32>> = self
            .engines
            .iter()
            .map(|e| {
                let mut part = vec![0.0; e.outbox_len()];
                let view = js_sys::Float32Array::new_with_byte_offset_and_length(
                    &memory.buffer(),
                    e.outbox_ptr() as u32,
                    part.len() as u32,
                );
                view.copy_to(&mut part);
                part
            })
            .collect();
        for (r, receiver) in self.engines.iter_mut().enumerate() {
            if r != 0 && !everyone {
                continue;
            }
            for (k, part) in parts.iter().enumerate().filter(|&(k, _)| k != r) {
                let at = receiver.inbox(k as u32, part.len() as u32).expect("a shard's inbox");
                let view = js_sys::Float32Array::new_with_byte_offset_and_length(
                    &memory.buffer(),
                    at as u32,
                    part.len() as u32,
                );
                view.copy_from(part);
            }
        }
    }

    /// Runs a generation to its end; returns the text.
    fn generate(&mut self, prompt: &str, options: &Options) -> Result<String, String> {
        self.leader().start(prompt.into(), options.js()).map_err(message)?;
        let mut text = String::new();
        while let Some(piece) = self.next()? {
            text.push_str(&piece);
        }
        Ok(text)
    }
}

/// Options as JS passes them.
struct Options {
    temperature: f64,
    topp: f64,
    seed: u64,
    steps: f64,
}

impl Options {
    fn greedy(steps: f64) -> Options {
        Options { temperature: 0.0, topp: 0.9, seed: 1, steps }
    }

    fn js(&self) -> JsValue {
        let o = js_sys::Object::new();
        let set = |k: &str, v: JsValue| js_sys::Reflect::set(&o, &k.into(), &v).unwrap();
        set("temperature", self.temperature.into());
        set("topp", self.topp.into());
        set("seed", js_sys::BigInt::from(self.seed).into());
        set("steps", self.steps.into());
        o.into()
    }
}

/// Loads a test model over `shards` engines, or `None` when the fixtures are absent.
fn cluster(checkpoint: &str, tokenizer: &str, shards: u32) -> Option<Cluster> {
    let (model, tok) = (fixture(checkpoint)?, fixture(tokenizer)?);
    Some(
        Cluster::load(model, checkpoint, tok, shards)
            .unwrap_or_else(|e| panic!("{checkpoint}: {e}")),
    )
}

/// Every golden generate case over `shards` engines: the same ids as run.c.
fn golden_generate(shards: u32) {
    let Some(cases) = golden(fixtures::GENERATE_JSON, "generate.json") else {
        return;
    };
    let mut failures = Vec::new();
    for case in &cases {
        let Case::Generate(c) = case else { continue };
        let Some(mut cluster) = cluster(&c.checkpoint, &c.tokenizer, shards) else {
            failures.push(format!("FAIL {}: a model file is missing", case.name()));
            continue;
        };
        let options = Options {
            temperature: c.temperature as f64,
            topp: c.topp as f64,
            seed: c.seed,
            steps: c.steps as f64,
        };
        let result = cluster.generate(c.prompt.as_deref().unwrap_or(""), &options).and_then(|_| {
            first_difference(&c.ids, &cluster.leader().token_ids()).map_or(Ok(()), Err)
        });
        if let Err(problem) = result {
            failures.push(format!("FAIL {}: {problem}", case.name()));
        }
    }
    report(&format!("generate.json over {shards} shards"), cases.len(), &failures);
}

/// Prints `N passed, M failed` for a golden file and fails the test on any failure.
fn report(what: &str, total: usize, failures: &[String]) {
    console_log!("{what}: {} passed, {} failed", total - failures.len(), failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[wasm_bindgen_test]
fn every_golden_generate_case_gives_the_same_ids() {
    // As www/engine/llama2.js does before its first engine: the warm-up leaves nothing behind.
    warm_up(1).map_err(message).expect("warm_up on its tiny generated model");
    golden_generate(1);
}

#[wasm_bindgen_test]
fn over_two_and_three_shards_the_ids_are_the_same() {
    golden_generate(2);
    golden_generate(3);
}

#[wasm_bindgen_test]
fn every_golden_tokenizer_case_gives_the_same_ids() {
    let Some(cases) = golden(fixtures::TOKENIZER_JSON, "tokenizer.json") else {
        return;
    };
    let mut failures = Vec::new();
    for case in &cases {
        let Case::Tokenizer(c) = case else { continue };
        let result = match fixture(&c.tokenizer) {
            Some(tokenizer) => {
                encode(tokenizer, c.vocab_size as u32, c.text.as_str().into(), c.bos, c.eos)
                    .map_err(message)
                    .and_then(|ids| first_difference(&c.ids, &ids).map_or(Ok(()), Err))
            }
            None => Err(format!("{} is missing", c.tokenizer)),
        };
        if let Err(problem) = result {
            failures.push(format!("FAIL {}: {problem}", case.name()));
        }
    }
    report("tokenizer.json", cases.len(), &failures);
}

#[wasm_bindgen_test]
fn stop_ends_a_generation_and_the_engine_generates_again() {
    let Some(mut cluster) = cluster("aidreams260K.bin", "tok512-aidreams.bin", 1) else {
        return;
    };
    let full = cluster.generate("Once upon a time", &Options::greedy(0.0)).unwrap();
    let ids = cluster.leader().token_ids();

    let engine = cluster.leader();
    engine.start("Once upon a time".into(), Options::greedy(0.0).js()).unwrap();
    for _ in 0..10 {
        engine.generate_next().unwrap();
    }
    engine.stop();
    assert_eq!(engine.generate_next().map_err(message), Ok(None));
    assert_eq!(engine.stop_reason().as_deref(), Some("stopped"));

    assert_eq!(cluster.generate("Once upon a time", &Options::greedy(0.0)).unwrap(), full);
    assert_eq!(cluster.leader().token_ids(), ids);
    assert_eq!(cluster.leader().stop_reason().as_deref(), Some("context"));
}

#[wasm_bindgen_test]
fn reloading_a_model_does_not_grow_memory() {
    let (Some(model), Some(tok)) = (fixture("aidreams260K.bin"), fixture("tok512-aidreams.bin"))
    else {
        return;
    };
    let memory = || {
        wasm_bindgen::memory()
            .unchecked_into::<js_sys::WebAssembly::Memory>()
            .buffer()
            .unchecked_into::<js_sys::ArrayBuffer>()
            .byte_length()
    };
    let mut sizes = Vec::new();
    for _ in 0..5 {
        let mut cluster = Cluster::load(model, "aidreams260K.bin", tok, 1).unwrap();
        cluster.generate("", &Options::greedy(16.0)).unwrap();
        sizes.push(memory());
    }
    assert!(sizes.windows(2).skip(1).all(|w| w[0] == w[1]), "memory grew on reload: {sizes:?}");
}

#[wasm_bindgen_test]
fn bad_inputs_give_messages_and_leave_the_engine_usable() {
    let mut engine = Engine::new();
    let err = message(engine.begin_checkpoint(&[], -1.0, "x.bin".into(), 0, 1).unwrap_err());
    assert!(err.starts_with("type:") && err.contains("not a byte count"), "{err}");
    let err = message(engine.begin_checkpoint(&[0; 8], 8.0, 5.into(), 0, 1).unwrap_err());
    assert!(err.contains("name must be a string, not number"), "{err}");
    let err = message(engine.begin_checkpoint(&[0; 8], 8.0, "x.bin".into(), 2, 2).unwrap_err());
    assert!(err.contains("not a shard"), "{err}");
    let err = message(engine.generate_next().unwrap_err());
    assert!(err.starts_with("state:") && err.contains("no model loaded"), "{err}");
    let err = message(engine.end_checkpoint().unwrap_err());
    assert!(err.contains("begin_checkpoint"), "{err}");
    let err = message(
        engine.begin_checkpoint(&[0xff; 100], 100.0, "corrupt.bin".into(), 0, 1).unwrap_err(),
    );
    assert!(err.starts_with("format:") && err.contains("corrupt.bin"), "{err}");

    let (Some(model), Some(tok)) = (fixture("aidreams260K.bin"), fixture("tok512-aidreams.bin"))
    else {
        return;
    };
    engine
        .begin_checkpoint(&model[..256], model.len() as f64, "aidreams260K.bin".into(), 0, 1)
        .unwrap();
    engine.write_checkpoint(0.0, &model[..1000]).unwrap();
    let err = message(engine.end_checkpoint().unwrap_err());
    assert!(err.contains("incomplete"), "{err}");

    let mut cluster = Cluster::load(model, "aidreams260K.bin", tok, 1).unwrap();
    let engine = cluster.leader();
    let err = message(engine.load_tokenizer(&tok[..tok.len() / 2], "half.bin".into()).unwrap_err());
    assert!(err.contains("half.bin"), "{err}");
    engine.load_tokenizer(tok, "tok512-aidreams.bin".into()).unwrap(); // the model stayed loaded
    let nan = Options { temperature: f64::NAN, topp: 0.9, seed: 1, steps: 10.0 };
    let err = message(engine.start("x".into(), nan.js()).unwrap_err());
    assert!(err.starts_with("options:") && err.contains("temperature is NaN"), "{err}");
    // Arguments of the wrong type: a TypeError naming them, never a trap.
    let err = message(engine.start(42.into(), JsValue::UNDEFINED).unwrap_err());
    assert!(
        err.starts_with("type:") && err.contains("prompt must be a string, not number"),
        "{err}"
    );
    let err = message(engine.start(js_sys::Object::new().into(), JsValue::UNDEFINED).unwrap_err());
    assert!(err.contains("prompt must be a string, not object"), "{err}");
    let err = message(engine.start("x".into(), "fast".into()).unwrap_err());
    assert!(err.contains("options must be an object"), "{err}");
    assert!(!cluster.generate("Once", &Options::greedy(20.0)).unwrap().is_empty());
}
