//! wasm-bindgen tests of the wasm `Engine` (src/wasm.rs), the surface the page uses. They run
//! in Node (tests/wasm_node.rs) and in headless Chrome (tests/wasm_browser.rs), from the repo
//! root, as `./build.sh test` runs them:
//!
//!   wasm-pack test --node
//!   wasm-pack test --headless --chrome
//!
//! (wasm-bindgen-test picks Node or a browser per test binary, so each target has its own
//! three-line file and both include this module.) The golden files and models are embedded at
//! build time by build.rs (a test in wasm cannot read files); without them the tests say so and
//! pass, unless LLAMA2_REQUIRE_FIXTURES=1.

use llama2_wasm::conformance::{first_difference, parse_cases, Case};
use llama2_wasm::wasm::{encode, warm_up, Engine};
use wasm_bindgen::{JsCast, JsError, JsValue};
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

mod fixtures {
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));
}

/// The embedded file `name`, or `None` (after saying why) when the fixtures are absent.
fn fixture(name: &str) -> Option<&'static [u8]> {
    let found = fixtures::FILES.iter().find(|(n, _)| *n == name).map(|(_, bytes)| *bytes);
    if found.is_none() {
        if fixtures::REQUIRED {
            panic!(
                "fixture {name} missing from {} (LLAMA2_REQUIRE_FIXTURES=1)",
                fixtures::MODELS_DIR
            );
        }
        console_log!("SKIP: {name} not found in {} (set LLAMA2_MODELS)", fixtures::MODELS_DIR);
    }
    found
}

/// The parsed cases of an embedded golden file, or `None` when absent.
fn golden(json: Option<&str>, what: &str) -> Option<Vec<Case>> {
    let Some(json) = json else {
        if fixtures::REQUIRED {
            panic!(
                "golden {what} missing beside {} (LLAMA2_REQUIRE_FIXTURES=1)",
                fixtures::MODELS_DIR
            );
        }
        console_log!(
            "SKIP: golden {what} not found beside {} (set LLAMA2_MODELS)",
            fixtures::MODELS_DIR
        );
        return None;
    };
    Some(parse_cases(json).unwrap_or_else(|e| panic!("golden {what}: {e}")))
}

/// A JsError's message (JsError has no Debug or Display in Rust).
fn message(err: JsError) -> String {
    js_sys::Error::from(JsValue::from(err)).message().into()
}

/// An engine with `checkpoint` + `tokenizer` loaded the way llama2.js does it: allocate, fill
/// the buffer in place, parse, then the tokenizer.
fn engine(checkpoint: &str, tokenizer: &str) -> Result<Engine, String> {
    let (Some(model), Some(tok)) = (fixture(checkpoint), fixture(tokenizer)) else {
        return Err(format!("{checkpoint} or {tokenizer} missing"));
    };
    let mut engine = Engine::new();
    load(&mut engine, model, checkpoint).map_err(message)?;
    engine.load_tokenizer(tok, tokenizer).map_err(message)?;
    Ok(engine)
}

fn load(engine: &mut Engine, model: &[u8], name: &str) -> Result<(), JsError> {
    engine.alloc_checkpoint(model.len() as f64)?;
    engine.checkpoint_bytes_mut()?.copy_from_slice(model);
    engine.load_checkpoint(name)
}

/// Runs a generation to its end; returns the text.
fn generate(
    engine: &mut Engine,
    prompt: &str,
    temperature: f32,
    topp: f32,
    seed: u64,
    steps: u32,
) -> Result<String, String> {
    engine.start(prompt, temperature, topp, seed, steps).map_err(message)?;
    let mut text = String::new();
    while let Some(piece) = engine.generate_next().map_err(message)? {
        text.push_str(&piece);
    }
    Ok(text)
}

#[wasm_bindgen_test]
fn every_golden_generate_case_gives_the_same_ids() {
    let Some(cases) = golden(fixtures::GENERATE_JSON, "generate.json") else {
        return;
    };
    // As www/llama2.js does before its first engine: the warm-up leaves nothing behind.
    warm_up(1).map_err(message).expect("warm_up on its tiny generated model");
    let mut failures = Vec::new();
    for case in &cases {
        let Case::Generate(c) = case else { continue };
        let result = engine(&c.checkpoint, &c.tokenizer).and_then(|mut engine| {
            generate(
                &mut engine,
                c.prompt.as_deref().unwrap_or(""),
                c.temperature,
                c.topp,
                c.seed,
                c.steps as u32,
            )?;
            first_difference(&c.ids, &engine.token_ids()).map_or(Ok(()), Err)
        });
        if let Err(problem) = result {
            failures.push(format!("FAIL {}: {problem}", case.name()));
        }
    }
    report("generate.json", cases.len(), &failures);
}

/// Prints `N passed, M failed` for a golden file and fails the test on any failure.
fn report(file: &str, total: usize, failures: &[String]) {
    console_log!("{file}: {} passed, {} failed", total - failures.len(), failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[wasm_bindgen_test]
fn every_golden_tokenizer_case_gives_the_same_ids() {
    let Some(cases) = golden(fixtures::TOKENIZER_JSON, "tokenizer.json") else {
        return;
    };
    let mut failures = Vec::new();
    for case in &cases {
        let Case::Tokenizer(c) = case else { continue };
        let Some(tokenizer) = fixture(&c.tokenizer) else {
            return;
        };
        let result = encode(tokenizer, c.vocab_size, &c.text, c.bos, c.eos).map_err(message);
        if let Some(problem) =
            result.and_then(|ids| first_difference(&c.ids, &ids).map_or(Ok(()), Err)).err()
        {
            failures.push(format!("FAIL {}: {problem}", case.name()));
        }
    }
    report("tokenizer.json", cases.len(), &failures);
}

#[wasm_bindgen_test]
fn stop_ends_a_generation_and_the_engine_generates_again() {
    let Ok(mut engine) = engine("aidreams260K.bin", "tok512-aidreams.bin") else {
        return;
    };
    let full = generate(&mut engine, "Once upon a time", 0.0, 0.9, 1, 0).unwrap();
    let ids = engine.token_ids();

    engine.start("Once upon a time", 0.0, 0.9, 1, 0).unwrap();
    for _ in 0..10 {
        engine.generate_next().unwrap();
    }
    engine.stop();
    assert_eq!(engine.generate_next().map_err(message), Ok(None));
    assert_eq!(engine.stop_reason().as_deref(), Some("stopped"));

    assert_eq!(generate(&mut engine, "Once upon a time", 0.0, 0.9, 1, 0).unwrap(), full);
    assert_eq!(engine.token_ids(), ids);
    assert_ne!(engine.stop_reason().as_deref(), Some("stopped"));
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
    let mut engine = Engine::new();
    let mut sizes = Vec::new();
    for _ in 0..5 {
        load(&mut engine, model, "aidreams260K.bin").unwrap();
        engine.load_tokenizer(tok, "tok512-aidreams.bin").unwrap();
        generate(&mut engine, "", 0.0, 0.9, 1, 16).unwrap();
        sizes.push(memory());
    }
    assert!(sizes.windows(2).skip(1).all(|w| w[0] == w[1]), "memory grew on reload: {sizes:?}");
}

#[wasm_bindgen_test]
fn bad_inputs_give_messages_and_leave_the_engine_usable() {
    let mut engine = Engine::new();
    let err = message(engine.alloc_checkpoint(5e9).unwrap_err());
    assert!(err.contains("4 GB"), "{err}");
    let err = message(engine.alloc_checkpoint(-1.0).unwrap_err());
    assert!(err.contains("not a byte count"), "{err}");
    let err = message(engine.generate_next().unwrap_err());
    assert!(err.contains("no model loaded"), "{err}");
    let err = message(engine.load_checkpoint("x.bin").unwrap_err());
    assert!(err.contains("alloc_checkpoint"), "{err}");

    engine.alloc_checkpoint(100.0).unwrap();
    engine.checkpoint_bytes_mut().unwrap().fill(0xff);
    let err = message(engine.load_checkpoint("corrupt.bin").unwrap_err());
    assert!(err.contains("corrupt.bin"), "{err}");

    let (Some(model), Some(tok)) = (fixture("aidreams260K.bin"), fixture("tok512-aidreams.bin"))
    else {
        return;
    };
    load(&mut engine, model, "aidreams260K.bin").unwrap();
    let err = message(engine.load_tokenizer(&tok[..tok.len() / 2], "half.bin").unwrap_err());
    assert!(err.contains("half.bin"), "{err}");
    engine.load_tokenizer(tok, "tok512-aidreams.bin").unwrap(); // the checkpoint stayed loaded
    let err = message(engine.start("x", f32::NAN, 0.9, 1, 10).unwrap_err());
    assert!(err.contains("temperature") || err.contains("NaN"), "{err}");
    assert!(!generate(&mut engine, "Once", 0.0, 0.9, 1, 20).unwrap().is_empty());
}
