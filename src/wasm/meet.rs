//! Meeting the other shards: what this engine waits for (`pending()`), its part and theirs,
//! the leader's commands; the driver (www/engine/llama2.js, shard-worker.js) carries them.

use wasm_bindgen::prelude::*;

use super::args::*;
use super::*;

#[wasm_bindgen]
impl Engine {
    /// What the shards must exchange before the engine can go on ([`PENDING`]): 0 nothing, 1
    /// a gather for everyone (send `outbox` to every shard, `inbox` each one's part), 2 a gather
    /// for the leader (only the leader receives), 3 the leader's command for the other shards
    /// (`command()`).
    pub fn pending(&self) -> u32 {
        let Some(mailbox) = &self.mailbox else { return 0 };
        match &mailbox.borrow().pending {
            None => 0,
            Some(Pending::Gather(To::Everyone)) => PENDING.gather_all,
            Some(Pending::Gather(To::Leader)) => PENDING.gather_leader,
            Some(Pending::Command(_)) => PENDING.command,
        }
    }

    /// Address in wasm memory of this shard's part of the pending gather (f32s).
    pub fn outbox_ptr(&self) -> usize {
        self.mailbox.as_ref().map_or(0, |m| m.borrow().outbox.as_ptr() as usize)
    }

    /// Number of f32s in this shard's part of the pending gather.
    pub fn outbox_len(&self) -> usize {
        self.mailbox.as_ref().map_or(0, |m| m.borrow().outbox.len())
    }

    /// Makes room for `len` f32s of shard `shard`'s part of the pending gather and returns
    /// their address in wasm memory, for JS to write them there.
    pub fn inbox(&mut self, shard: u32, len: u32) -> Result<usize> {
        let mailbox =
            self.mailbox.as_ref().ok_or_else(|| Failure::state("inbox: one shard only"))?;
        let mut m = mailbox.borrow_mut();
        let inbox = m
            .inboxes
            .get_mut(shard as usize)
            .ok_or_else(|| Failure::type_error(&format!("inbox: no shard {shard}")))?;
        inbox.clear();
        inbox.resize(len as usize, 0.0);
        Ok(inbox.as_ptr() as usize)
    }

    /// The leader's pending command (`[pos, flags, ...tokens]`, see `link::Command::encode`),
    /// for the other shards' `serve`.
    pub fn command(&self) -> Vec<u32> {
        let Some(mailbox) = &self.mailbox else { return Vec::new() };
        match &mailbox.borrow().pending {
            Some(Pending::Command(c)) => c.encode(),
            _ => Vec::new(),
        }
    }

    /// A shard other than the leader: starts the pass of the leader's `command()`. Returns
    /// whether it is done; else exchange what `pending()` says and call `poll()`.
    pub fn serve(&mut self, command: &[u32]) -> Result<bool> {
        let command = Command::decode(command)
            .ok_or_else(|| Failure::type_error("serve: a command is [pos, flags, ...tokens]"))?;
        let model = match std::mem::replace(&mut self.slot, Slot::Empty) {
            Slot::Model(model) => model,
            other => {
                self.slot = other;
                return Err(Failure::state("serve: this shard has no model ready"));
            }
        };
        self.slot = Slot::Serving(Box::pin(async move {
            let mut model = model;
            let result = model.serve(&command).await;
            (model, result)
        }));
        self.poll()
    }

    /// A shard other than the leader: switches off what `list` says (`['1:2', '0:attn']`, as
    /// the leader's `ablate` option) from its next pass on, so that every shard computes the
    /// same model.
    pub fn set_ablation(&mut self, list: JsValue) -> Result<()> {
        let Slot::Model(model) = &mut self.slot else {
            return Err(Failure::state("set_ablation: this shard has no model ready"));
        };
        let ablation = ablation(&list, model.config())?;
        model.set_ablation(ablation);
        Ok(())
    }

    /// Goes on with the pass started by `serve`: whether it is done.
    pub fn poll(&mut self) -> Result<bool> {
        let Slot::Serving(pass) = &mut self.slot else {
            return Err(Failure::state("poll: no pass is running"));
        };
        if let Some(m) = &self.mailbox {
            m.borrow_mut().pending = None;
        }
        let Some((model, result)) = poll_once(pass.as_mut()) else { return Ok(false) };
        self.slot = Slot::Model(model);
        result?;
        Ok(true)
    }
}
