//! The request body of a coding agent's turn, generated: what the `chat-agent` scenario sends
//! and `bench/callgrind --agent` counts. Real agents (Claude Code, Codex, Cursor) send 50–200 KB
//! per request — a long system prompt, a dozen tool definitions with JSON schemas, and the
//! conversation so far with its tool calls and the files and command output they returned —
//! where the other scenarios send 75 bytes. Most of it is long strings full of escapes (`\n`,
//! `\"`) with some non-ASCII text, which is what a gateway that reads the body pays for per byte.
//!
//! The text is made from a fixed word list by a fixed pseudo-random sequence, so every run and
//! every commit sends the same bytes (about 100 KB).

use serde_json::{Value, json};

/// One generated turn of an agent's conversation, in no dialect yet.
struct Conversation {
    /// Tool definitions: a name, a description and a JSON schema.
    tools: Vec<(String, String, Value)>,
    system: String,
    /// Per turn: the user's words, the `read_file` call's arguments, the file it returned.
    turns: Vec<(String, Value, String)>,
}

impl Conversation {
    /// The same words in the same order every time.
    fn generate() -> Self {
        let mut words = Words(0x2545_f491_4f6c_dd1d);
        let tools = (0..16).map(|t| words.tool(t)).collect();
        let system = words.prose(120);
        let turns = (0..14)
            .map(|_| {
                let arguments = json!({
                    "path": format!("src/{}.rs", words.word()),
                    "pattern": words.word(),
                    "limit": 200,
                });
                let ask = words.prose(4);
                (ask, arguments, words.code(60))
            })
            .collect();
        Conversation {
            tools,
            system,
            turns,
        }
    }
}

/// The body: an OpenAI chat completion request naming `model`, not streamed.
pub(crate) fn request(model: &str) -> Vec<u8> {
    let c = Conversation::generate();
    let tools: Vec<Value> = c
        .tools
        .into_iter()
        .map(|(name, description, parameters)| {
            json!({
                "type": "function",
                "function": {"name": name, "description": description, "parameters": parameters},
            })
        })
        .collect();
    let mut messages = vec![json!({"role": "system", "content": c.system})];
    for (turn, (ask, arguments, file)) in c.turns.into_iter().enumerate() {
        let id = format!("call_{turn}");
        messages.push(json!({"role": "user", "content": ask}));
        messages.push(json!({
            "role": "assistant",
            "content": null,
            "tool_calls": [{
                "id": id,
                "type": "function",
                "function": {"name": "read_file", "arguments": arguments.to_string()},
            }],
        }));
        messages.push(json!({"role": "tool", "tool_call_id": id, "content": file}));
    }
    let body = json!({
        "model": model,
        "max_tokens": 4096,
        "temperature": 0.2,
        "tools": tools,
        "messages": messages,
    });
    body.to_string().into_bytes()
}

/// The same turn as Anthropic Messages: what Claude Code sends (`POST /v1/messages`) — the
/// system prompt as a text block, tools with `input_schema`, each call a `tool_use` block and
/// its file a `tool_result` block in the next user message, with the user's words beside it.
pub(crate) fn messages_request(model: &str) -> Vec<u8> {
    let c = Conversation::generate();
    let tools: Vec<Value> = c
        .tools
        .into_iter()
        .map(|(name, description, schema)| {
            json!({"name": name, "description": description, "input_schema": schema})
        })
        .collect();
    let mut messages: Vec<Value> = Vec::new();
    let mut pending: Vec<Value> = Vec::new();
    for (turn, (ask, arguments, file)) in c.turns.into_iter().enumerate() {
        let id = format!("toolu_{turn}");
        pending.push(json!({"type": "text", "text": ask}));
        messages.push(json!({"role": "user", "content": std::mem::take(&mut pending)}));
        messages.push(json!({
            "role": "assistant",
            "content": [{"type": "tool_use", "id": id, "name": "read_file", "input": arguments}],
        }));
        pending.push(json!({"type": "tool_result", "tool_use_id": id, "content": file}));
    }
    pending.push(json!({"type": "text", "text": "Go on."}));
    messages.push(json!({"role": "user", "content": pending}));
    let body = json!({
        "model": model,
        "max_tokens": 4096,
        "temperature": 0.2,
        "system": [{"type": "text", "text": c.system}],
        "tools": tools,
        "messages": messages,
    });
    body.to_string().into_bytes()
}

const WORDS: &[&str] = &[
    "the",
    "a",
    "gateway",
    "request",
    "token",
    "credential",
    "stream",
    "agent",
    "model",
    "provider",
    "upstream",
    "limit",
    "budget",
    "key",
    "user",
    "device",
    "lockout",
    "policy",
    "route",
    "error",
    "retry",
    "answer",
    "chunk",
    "usage",
    "quota",
    "header",
    "body",
    "value",
    "string",
    "number",
    "function",
    "tool",
    "result",
    "file",
    "path",
    "line",
    "code",
    "test",
    "build",
    "café",
    "naïve",
    "→",
];

/// A xorshift sequence picking words.
struct Words(u64);

impl Words {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % below as u64) as usize
    }

    fn word(&mut self) -> &'static str {
        WORDS[self.next(WORDS.len())]
    }

    fn sentence(&mut self) -> String {
        let n = 6 + self.next(12);
        let mut s: Vec<&str> = (0..n).map(|_| self.word()).collect();
        let end = [".", ".", "!", "?", ": `x`.", " — \"quoted\"."][self.next(6)];
        s.push(end);
        s.join(" ")
    }

    /// `n` sentences, with a list item now and then.
    fn prose(&mut self, n: usize) -> String {
        let mut out = String::new();
        for _ in 0..n {
            out.push_str(&self.sentence());
            out.push(' ');
            if self.next(5) == 0 {
                out.push_str("\n\n- ");
                out.push_str(&self.sentence());
                out.push('\n');
            }
        }
        out
    }

    /// `lines` lines of indented source code, as a file-reading tool returns them.
    fn code(&mut self, lines: usize) -> String {
        let mut out = String::new();
        for i in 0..lines {
            let indent = "    ".repeat(self.next(4));
            let (a, b) = (self.word(), self.word());
            let line = match self.next(4) {
                0 => format!("{indent}let {a}_{i} = \"{b}\".to_string();"),
                1 => format!("{indent}// {}", self.sentence()),
                2 => format!("{indent}if x.{a}() {{ return Err(Error::new(\"{b} failed\")); }}"),
                _ => format!("{indent}fn {a}_{i}(a: &str, b: usize) -> Result<(), E> {{ Ok(()) }}"),
            };
            out.push_str(&format!("{:>5}\t{line}\n", i + 1));
        }
        out
    }

    fn tool(&mut self, t: usize) -> (String, String, Value) {
        let properties: serde_json::Map<String, Value> = (0..5)
            .map(|p| {
                let kind = ["string", "integer", "boolean"][self.next(3)];
                (
                    format!("p{p}"),
                    json!({"type": kind, "description": self.sentence()}),
                )
            })
            .collect();
        let name = if t == 0 {
            "read_file".to_owned()
        } else {
            format!("tool_{t}")
        };
        let description = self.prose(6);
        let schema = json!({"type": "object", "properties": properties, "required": ["p0", "p1"]});
        (name, description, schema)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_body_is_an_agent_sized_chat_request_and_the_same_every_time() {
        let body = super::request("mock-gpt");
        assert_eq!(body, super::request("mock-gpt"));
        assert!((80_000..140_000).contains(&body.len()), "{}", body.len());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["model"], "mock-gpt");
        assert_eq!(v["messages"].as_array().unwrap().len(), 1 + 14 * 3);
        let text = String::from_utf8(body).unwrap();
        assert!(text.matches("\\n").count() > 1000 && text.contains('→'));
    }

    #[test]
    fn the_messages_body_is_the_same_turn_in_anthropic_s_dialect() {
        let body = super::messages_request("mock-gpt");
        assert_eq!(body, super::messages_request("mock-gpt"));
        assert!((80_000..140_000).contains(&body.len()), "{}", body.len());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let chat: serde_json::Value = serde_json::from_slice(&super::request("mock-gpt")).unwrap();
        assert_eq!(v["model"], "mock-gpt");
        assert_eq!(v["system"][0]["text"], chat["messages"][0]["content"]);
        assert_eq!(v["tools"].as_array().unwrap().len(), 16);
        assert_eq!(
            v["tools"][3]["input_schema"],
            chat["tools"][3]["function"]["parameters"]
        );
        let messages = v["messages"].as_array().unwrap();
        // The roles alternate, starting and ending with the user.
        assert_eq!(messages.len(), 14 * 2 + 1);
        for (i, m) in messages.iter().enumerate() {
            assert_eq!(m["role"], if i % 2 == 0 { "user" } else { "assistant" });
        }
        let call = &messages[1]["content"][0];
        assert_eq!(call["type"], "tool_use");
        let arguments: serde_json::Value = serde_json::from_str(
            chat["messages"][2]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(call["input"], arguments);
        let result = &messages[2]["content"][0];
        assert_eq!(
            (&result["type"], &result["tool_use_id"]),
            (&"tool_result".into(), &call["id"])
        );
        assert_eq!(result["content"], chat["messages"][3]["content"]);
    }
}
