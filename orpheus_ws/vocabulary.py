"""Orpheus' vocabulary: token ids and the reference prompt (../shared/orpheus-facts.md).

Model knowledge with no I/O, shared by the engine (which reads generations) and the devtools
(which imitate the model). ``<custom_token_N>`` has id ``128256 + N``; audio tokens start at
``<custom_token_10>`` (id 128266). The k-th audio token of a generation carries
``code = N - 10 - (k % 7) * 4096``, valid in 0..4095. Seven audio tokens make a frame.
"""

from __future__ import annotations

CUSTOM_TOKEN_BASE = 128256
START_OF_SPEECH = 128257
END_OF_SPEECH = 128258
START_OF_HUMAN = 128259
END_OF_HUMAN = 128260
START_OF_AI = 128261
PAD = 128263
BOS = 128000
EOT = 128009
AUDIO_TOKEN_BASE = 128266
CODEBOOK_SIZE = 4096
TOKENS_PER_FRAME = 7
VOCAB_SIZE = 156940
# Emotion tags the English fine-tune knows; other tags are read aloud as words.
EMOTION_TAGS = ["<laugh>", "<chuckle>", "<sigh>", "<cough>", "<sniffle>", "<groan>", "<yawn>",
                "<gasp>"]


def audio_token_id(position: int, code: int) -> int:
    """The token id that carries ``code`` at ``position`` (0..6) within a frame."""
    return AUDIO_TOKEN_BASE + position * CODEBOOK_SIZE + code


def native_prompt(voice: str, text: str) -> list[int | str]:
    """The reference prompt for llama-server's /completion: ids mixed with one string."""
    return [START_OF_HUMAN, BOS, f"{voice}: {text}", EOT, END_OF_HUMAN, START_OF_AI,
            START_OF_SPEECH]


def id_prompt(text_ids: list[int]) -> list[int]:
    """The reference prompt as token ids, around the ids of ``"{voice}: {text}"`` (for
    OpenAI-compatible servers that take a list of ids as the prompt: vLLM, SGLang,
    llama-server)."""
    return [START_OF_HUMAN, BOS, *text_ids, EOT, END_OF_HUMAN, START_OF_AI, START_OF_SPEECH]


def text_prompt(voice: str, text: str) -> str:
    """The text form that OpenAI-compatible servers with an Orpheus GGUF expect."""
    return f"<|audio|>{voice}: {text}<|eot_id|>"


def parse_custom_token(text: str) -> list[int]:
    """Token ids named in a text of ``<custom_token_N>`` pieces (the OpenAI text form)."""
    ids: list[int] = []
    start = text.find("<custom_token_")
    while start >= 0:
        end = text.find(">", start)
        if end < 0:
            break
        number = text[start + 14 : end]
        if number.isdigit():
            ids.append(CUSTOM_TOKEN_BASE + int(number))
        start = text.find("<custom_token_", end)
    return ids


# The runaway guard's cuts (engine/guard.py): their codes, and what every protocol's warning says.
LENGTH, REPEAT = "runaway_length", "runaway_repeat"
CUT_MESSAGES = {
    LENGTH: "the model kept generating past what the segment's text can take to say; its "
            "audio was cut there",
    REPEAT: "the model started saying the segment again; the repeat was cut",
}
