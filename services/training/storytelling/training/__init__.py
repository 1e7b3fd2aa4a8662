"""Mini-Storytellers: small storytellers trained with SFT on teacher stories, then DPO on pairs ranked by
the evaluation service, exported as LoRA adapters that vLLM and the embedded engine serve.

The pipeline (`storytelling train data|sft|dpo|report`, or `recipe` for all of it) is a client of the
services: it writes with the story core's prompts and checks and scores through the EvaluationService over
gRPC. TRL, peft and datasets are imported only inside the training steps; no service imports this package.
"""
