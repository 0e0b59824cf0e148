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
    /// `inspect::DEFAULT_LENS_K`); then `poll_lens()` until it is done (the shards may have to
    /// meet: `pending()`), and `lens()`.
    pub fn lens_start(&mut self, pos: JsValue, k: JsValue) -> Result<bool> {
        let pos = whole(&pos, "lens: pos")?;
        let k = if k.is_undefined() {
            crate::inspect::DEFAULT_LENS_K as u32
        } else {
            whole(&k, "lens: k")?
        };
        // Its range (at least 1): `Generator::lens` checks it.
        let generator = match std::mem::replace(&mut self.slot, Slot::Empty) {
            Slot::Ready(generator) => generator,
            other => {
                self.slot = other;
                return Err(Failure::state("lens: no model ready (or a step is running)"));
            }
        };
        self.slot = Slot::Lensing(Box::pin(async move {
            let mut generator = generator;
            let lens = generator.lens(pos as usize, k as usize).await;
            (generator, lens)
        }));
        self.poll_lens()
    }

    /// Goes on with the lens started by `lens_start`: whether it is done.
    pub fn poll_lens(&mut self) -> Result<bool> {
        self.clear_pending();
        let Slot::Lensing(task) = &mut self.slot else {
            return Err(Failure::state("poll_lens: no lens is running"));
        };
        let Some((generator, lens)) = poll_once(task.as_mut()) else { return Ok(false) };
        self.slot = Slot::Ready(generator);
        self.lens = Some(lens?);
        Ok(true)
    }

    /// The last lens: per layer, `[[id, prob], ...]`.
    pub fn lens(&self) -> JsValue {
        let layers = js_sys::Array::new();
        for layer in self.lens.iter().flatten() {
            let top = js_sys::Array::new();
            for &(id, p) in layer {
                top.push(&js_sys::Array::of2(&id.into(), &(p as f64).into()));
            }
            layers.push(&top);
        }
        layers.into()
    }
}
