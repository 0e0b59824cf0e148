//! Looking inside (the Inspect view): what each pass captured, another branch of the story,
//! the logit lens.

use wasm_bindgen::prelude::*;

use super::args::*;
use super::*;
use crate::inspect::InspectOptions;

#[wasm_bindgen]
impl Engine {
    /// Each forward pass from now on captures the `top_k` most probable next tokens
    /// (`undefined`: `InspectOptions::DEFAULT_TOP_K`) and, with `attention`, every layer's and
    /// head's attention weights (`inspection()`); `inspect_off()` turns it off. While on, a
    /// prompt runs position by position. `top_k` is the JS API's `topK`: its type is checked
    /// here, its range by `InspectOptions::new`.
    pub fn inspect(&mut self, top_k: JsValue, attention: bool) -> Result<()> {
        let top_k = if top_k.is_undefined() {
            InspectOptions::DEFAULT_TOP_K
        } else {
            whole(&top_k, "tokens: topK")? as usize
        };
        let options = InspectOptions::new(top_k, attention)?;
        self.generator()?.inspect(Some(options));
        Ok(())
    }

    /// Passes capture nothing from now on (and a prompt runs in batches again).
    pub fn inspect_off(&mut self) -> Result<()> {
        self.generator()?.inspect(None);
        Ok(())
    }

    /// What the last forward pass captured (`inspect::Inspection`, by its field names): `{ pos,
    /// token, id, prompt (id was the prompt's), prob, rank, top: [[id, prob], ...], attention:
    /// Float32Array | undefined, layers, heads }` (attention is `(layer, head, pos + 1)`), or
    /// `undefined`.
    pub fn inspection(&self) -> Result<JsValue> {
        let Slot::Ready(generator) = &self.slot else { return Ok(JsValue::UNDEFINED) };
        let Some(seen) = generator.inspection() else { return Ok(JsValue::UNDEFINED) };
        let c = generator.config();
        let top = js_sys::Array::new();
        for &(id, p) in &seen.top {
            top.push(&js_sys::Array::of2(&id.into(), &(p as f64).into()));
        }
        let attention: JsValue = if seen.attention.is_empty() {
            JsValue::UNDEFINED
        } else {
            js_sys::Float32Array::from(&seen.attention[..]).into()
        };
        object(&[
            ("pos", seen.pos.into()),
            ("token", seen.token.into()),
            ("id", seen.id.into()),
            ("prompt", seen.prompt.into()),
            ("prob", (seen.prob as f64).into()),
            ("rank", seen.rank.into()),
            ("top", top.into()),
            ("attention", attention),
            ("layers", c.n_layers.into()),
            ("heads", c.n_heads.into()),
        ])
    }

    /// Continues the story from position `pos` with token `token` fed there (see
    /// `Generator::branch`: the KV cache below `pos` is kept; sampling restarts from the seed).
    /// Returns the fed token's text, as the story's text has it.
    pub fn branch(&mut self, pos: JsValue, token: JsValue) -> Result<String> {
        let (pos, token) = (whole(&pos, "branch: pos")?, whole(&token, "branch: token")?);
        self.stop_reason = None;
        Ok(self.generator()?.branch(pos as usize, token)?)
    }

    /// Starts the logit lens of position `pos` (top `k` per layer, `undefined`:
    /// `inspect::DEFAULT_LENS_K`); then `poll_look()` until it is done (the shards may have to
    /// meet: `pending()`), and `lens()`.
    pub fn lens_start(&mut self, pos: JsValue, k: JsValue) -> Result<bool> {
        let pos = whole(&pos, "lens: pos")? as usize;
        let k = if k.is_undefined() {
            crate::inspect::DEFAULT_LENS_K as u32
        } else {
            whole(&k, "lens: k")?
        };
        // Its range (at least 1): `Generator::lens` checks it.
        self.look_start("lens", move |mut generator| async move {
            let lens = generator.lens(pos, k as usize).await.map(Looked::Lens);
            (generator, lens)
        })
    }

    /// Starts the trace of position `pos` (every vector of its pass, `inspect::Trace`); then
    /// `poll_look()` until it is done, and `trace()`.
    pub fn trace_start(&mut self, pos: JsValue) -> Result<bool> {
        let pos = whole(&pos, "trace: pos")? as usize;
        self.look_start("trace", move |mut generator| async move {
            let trace = generator.trace(pos).await.map(Looked::Trace);
            (generator, trace)
        })
    }

    /// Starts the lens map of the whole story (`inspect::LensMap`: per layer and position the
    /// lens's entropy, its KL to the final distribution and, with `pin` a token id, that
    /// token's probability); then `poll_look()` until it is done, and `lens_map()`.
    pub fn lens_map_start(&mut self, pin: JsValue) -> Result<bool> {
        let pin = if pin.is_undefined() || pin.is_null() {
            None
        } else {
            Some(whole(&pin, "lens map: pin")?)
        };
        self.look_start("lens map", move |mut generator| async move {
            let map = generator.lens_map(pin).await.map(Looked::Map);
            (generator, map)
        })
    }

    /// Goes on with the look started by `lens_start`, `trace_start` or `lens_map_start`:
    /// whether it is done.
    pub fn poll_look(&mut self) -> Result<bool> {
        self.clear_pending();
        let Slot::Looking(task) = &mut self.slot else {
            return Err(Failure::state("poll_look: nothing is being looked into"));
        };
        let Some((generator, looked)) = poll_once(task.as_mut()) else { return Ok(false) };
        self.slot = Slot::Ready(generator);
        self.looked = Some(looked?);
        Ok(true)
    }

    /// The last lens: per layer, `[[id, prob], ...]`.
    pub fn lens(&self) -> JsValue {
        let layers = js_sys::Array::new();
        if let Some(Looked::Lens(lens)) = &self.looked {
            for layer in lens {
                let top = js_sys::Array::new();
                for &(id, p) in layer {
                    top.push(&js_sys::Array::of2(&id.into(), &(p as f64).into()));
                }
                layers.push(&top);
            }
        }
        layers.into()
    }

    /// The last lens map: `{ layers, positions, pin, entropy, kl, pinned }`, the vectors
    /// `Float32Array`s of `(layer, position)` (`pin` null and `pinned` empty without a pin);
    /// `undefined` when the last look was not a map.
    pub fn lens_map(&self) -> Result<JsValue> {
        let Some(Looked::Map(m)) = &self.looked else { return Ok(JsValue::UNDEFINED) };
        let f32s = |v: &[f32]| JsValue::from(js_sys::Float32Array::from(v));
        object(&[
            ("layers", m.layers.into()),
            ("positions", m.positions.into()),
            ("pin", m.pin.map_or(JsValue::NULL, JsValue::from)),
            ("entropy", f32s(&m.entropy)),
            ("kl", f32s(&m.kl)),
            ("pinned", f32s(&m.pinned)),
        ])
    }

    /// The last trace, by the CLI's `--trace` names: `{ pos, token, id, prompt, embedding, layers: [{
    /// attn_norm, q, k, v, attention, heads_out, attn_out, residual_attn, ffn_norm, gate,
    /// ffn_out, residual_ffn }], final_norm, logits }`, each vector a `Float32Array`
    /// (`attention`: `(n_heads, pos + 1)`); `undefined` when the last look was not a trace.
    pub fn trace(&self) -> Result<JsValue> {
        let Some(Looked::Trace(t)) = &self.looked else { return Ok(JsValue::UNDEFINED) };
        let f32s = |v: &[f32]| JsValue::from(js_sys::Float32Array::from(v));
        let layers = js_sys::Array::new();
        for l in &t.layers {
            let fields = l.vectors().map(|(name, v)| (name, f32s(v)));
            layers.push(&object(&fields)?);
        }
        object(&[
            ("pos", t.pos.into()),
            ("token", t.token.into()),
            ("id", t.id.into()),
            ("prompt", t.prompt.into()),
            ("embedding", f32s(&t.embedding)),
            ("layers", layers.into()),
            ("final_norm", f32s(&t.final_norm)),
            ("logits", f32s(&t.logits)),
        ])
    }
}

impl Engine {
    /// Parks `look` (which owns the generator until it ends) and polls it once.
    fn look_start<F>(&mut self, what: &str, look: impl FnOnce(Generator) -> F) -> Result<bool>
    where
        F: std::future::Future<Output = (Generator, crate::Result<Looked>)> + 'static,
    {
        let generator = match std::mem::replace(&mut self.slot, Slot::Empty) {
            Slot::Ready(generator) => generator,
            other => {
                self.slot = other;
                return Err(Failure::state(&format!(
                    "{what}: no model ready (or a step is running)"
                )));
            }
        };
        self.slot = Slot::Looking(Box::pin(look(generator)));
        self.poll_look()
    }
}
