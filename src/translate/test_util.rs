//! Builders of intermediate-shape values the codecs' tests share.

use super::model::{Event, Part, ToolCall, ToolResult};

/// A text part.
pub(crate) fn text(t: &str) -> Part {
    Part::Text(t.into())
}

/// A tool call part.
pub(crate) fn call(id: &str, name: &str, arguments: &str) -> Part {
    Part::ToolCall(ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
    })
}

/// A tool result part without a function name.
pub(crate) fn result(call_id: &str, content: Vec<Part>, is_error: bool) -> Part {
    Part::ToolResult(ToolResult {
        call_id: call_id.into(),
        name: None,
        content,
        is_error,
    })
}

/// Tool call `index` begins.
pub(crate) fn call_start(index: usize, id: &str, name: &str) -> Event {
    Event::ToolCallStart {
        index,
        id: id.into(),
        name: name.into(),
    }
}

/// More of tool call `index`'s arguments.
pub(crate) fn args(index: usize, fragment: &str) -> Event {
    Event::ToolCallArgs {
        index,
        fragment: fragment.into(),
    }
}
