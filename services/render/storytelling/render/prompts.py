"""Long prompts for CLIP text encoders: chunked prompt embeddings instead of silent truncation.

A CLIP encoder sees 77 positions (BOS, 75 tokens, EOS). Stories run to 150-400 tokens, so the token
sequence is split into 75-token windows; each window is wrapped in BOS/EOS, padded to 77 and encoded on
its own, and the windows' hidden states are concatenated along the sequence axis. The UNet's
cross-attention accepts any sequence length, so every token of the story reaches the image. Prompts
painted together, and the negative prompt, are padded with empty windows to a common window count
(the UNet needs one sequence length per batch). SDXL runs two encoders: their windows are concatenated
on the feature axis, as the pipeline does for one window, and its pooled embedding is the projection of
the first window (the story's opening, where the scene is set).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

WINDOW = 75  # tokens per window; BOS and EOS fill the encoder's other two positions


@dataclass(frozen=True)
class TokenCount:
    """How much of a prompt reaches the text encoder."""

    prompt_tokens: int
    encoded_tokens: int
    strategy: str  # "none", "chunked" or "t5" (Image.long_prompt_strategy)


class ChunkedClipEncoder:
    """Encodes prompts of any length with a CLIP tokenizer and text encoder, window by window.

    `penultimate` takes the second-to-last hidden layer, as SDXL does; SD 1.x/2.x take the last.
    """

    def __init__(self, tokenizer, text_encoder, penultimate: bool = False) -> None:
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder
        self.penultimate = penultimate
        self.length = tokenizer.model_max_length  # 77 for every CLIP encoder
        if self.length != WINDOW + 2:
            raise ValueError(f"expected a CLIP tokenizer with 77 positions, got {self.length}")

    def token_ids(self, text: str) -> list[int]:
        """The prompt's tokens without BOS/EOS and without truncation."""
        return self.tokenizer(text, add_special_tokens=False, truncation=False).input_ids

    def windows(self, text: str) -> int:
        return max(1, -(-len(self.token_ids(text)) // WINDOW))

    def count(self, text: str) -> TokenCount:
        n = len(self.token_ids(text))
        return TokenCount(prompt_tokens=n, encoded_tokens=n, strategy="chunked" if n > WINDOW else "none")

    def _window_ids(self, text: str, windows: int) -> list[list[int]]:
        ids = self.token_ids(text)
        tok = self.tokenizer
        rows = []
        for w in range(windows):
            body = ids[w * WINDOW : (w + 1) * WINDOW]
            row = [tok.bos_token_id, *body, tok.eos_token_id]
            rows.append(row + [tok.pad_token_id] * (self.length - len(row)))
        return rows

    @torch.no_grad()
    def encode(self, texts: list[str], windows: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Hidden states (len(texts), windows * 77, hidden), every text padded to `windows`, and for an
        encoder with a projection (SDXL's second) the pooled embedding of each text's first window."""
        rows = [row for text in texts for row in self._window_ids(text, windows)]
        out = self.text_encoder(
            torch.tensor(rows, device=self.text_encoder.device), output_hidden_states=True
        )
        hidden = out.hidden_states[-2] if self.penultimate else out[0]
        pooled = getattr(out, "text_embeds", None)
        if pooled is not None:
            pooled = pooled.reshape(len(texts), windows, -1)[:, 0]
        return hidden.reshape(len(texts), windows * self.length, hidden.shape[-1]), pooled


def encode_chunked(
    encoders: list[ChunkedClipEncoder], texts: list[str], windows: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """All encoders' windows, concatenated on the feature axis; the last encoder's pooled embedding."""
    outputs = [encoder.encode(texts, windows) for encoder in encoders]
    return torch.cat([hidden for hidden, _ in outputs], dim=-1), outputs[-1][1]
