"""HCAM's defining properties: it reduces to ordinary attention with one token per chunk and k = M;
it matches a per-query, per-chunk reference loop; blocked and unselected chunks have no influence;
no gradient reaches the memory; batch elements are independent; position encodings make token order
matter; a query that may read nothing reads zeros."""

import math

import pytest
import torch
from torch import nn

from wanderlust.memory import HCAM, HCAMConfig, chunk_summaries, position_encoding

pytestmark = pytest.mark.unit

QUERY_SIZE, TOKEN_SIZE, FEATURES = 6, 8, 8


def make(top_k: int = 2, num_heads: int = 1, use_position_encoding: bool = True, **config) -> HCAM:
    """An HCAM whose parameters, biases included, are all random, so every term is exercised."""
    torch.manual_seed(0)
    module = HCAM(HCAMConfig(
        input_size=QUERY_SIZE, memory_size=TOKEN_SIZE, feature_size=FEATURES, top_k=top_k,
        num_heads=num_heads, use_position_encoding=use_position_encoding, **config,
    ))
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_(0.0, 0.4)
    return module.double()


def memory(batch: int = 2, queries: int = 3, chunks: int = 5, chunk_length: int = 4, seed: int = 1):
    """(queries [B, Q, E], keys [B, M, D], contents [B, M, C, D]) in float64, keys = chunk means."""
    generator = torch.Generator().manual_seed(seed)
    query = torch.randn(batch, queries, QUERY_SIZE, generator=generator, dtype=torch.float64)
    contents = torch.randn(batch, chunks, chunk_length, TOKEN_SIZE, generator=generator, dtype=torch.float64)
    return query, chunk_summaries(contents), contents


def reference(module: HCAM, queries, keys, contents, mask=None) -> torch.Tensor:
    """HCAM written as loops over batch, queries, selected chunks and heads, from the specification."""
    cfg = module.config
    batch, num_queries, _ = queries.shape
    _, num_chunks, chunk_length, _ = contents.shape
    head_size = cfg.feature_size // cfg.num_heads
    output = torch.zeros(batch, num_queries, cfg.feature_size, dtype=queries.dtype)
    encoding = position_encoding(chunk_length, TOKEN_SIZE, dtype=contents.dtype)
    for b in range(batch):
        for q in range(num_queries):
            query = queries[b, q]
            chunk_query = module.relevance_query.weight @ query
            logits = [(chunk_query @ (module.relevance_key.weight @ keys[b, m])) / math.sqrt(cfg.feature_size)
                      for m in range(num_chunks)]
            allowed = [m for m in range(num_chunks) if mask is None or mask[b, q, m]]
            selected = sorted(allowed, key=lambda m: -logits[m])[: cfg.top_k]
            if not selected:
                continue
            weights = torch.stack([logits[m] for m in selected]).softmax(0)
            for weight, m in zip(weights, selected):
                tokens = contents[b, m] + (encoding if cfg.use_position_encoding else 0)
                token_query = module.token_query(query)
                token_keys, token_values = module.token_key(tokens), module.token_value(tokens)
                read = []
                for h in range(cfg.num_heads):
                    part = slice(h * head_size, (h + 1) * head_size)
                    attention = (token_keys[:, part] @ token_query[part] / math.sqrt(head_size)).softmax(0)
                    read.append(attention @ token_values[:, part])
                output[b, q] += weight * module.token_output(torch.cat(read))
    return output


@pytest.mark.parametrize("num_heads", [1, 4])
def test_one_token_per_chunk_and_k_equal_m_is_ordinary_attention(num_heads):
    """With C = 1 every within-chunk softmax is over one token (weight 1, for every head), so HCAM is
    single-head attention of the query over the M tokens: query and key projections are the
    relevance projections, and the value map is token_output ∘ token_value (an affine map)."""
    chunks = 6
    module = make(top_k=chunks, num_heads=num_heads, use_position_encoding=False)
    queries, keys, contents = memory(chunks=chunks, chunk_length=1)
    tokens = contents[:, :, 0]  # [B, M, D]
    with torch.no_grad():
        projected_queries = queries @ module.relevance_query.weight.T
        projected_keys = tokens @ module.relevance_key.weight.T
        weights = torch.softmax(projected_queries @ projected_keys.transpose(1, 2) / math.sqrt(FEATURES), dim=-1)
        value_weight = module.token_output.weight @ module.token_value.weight
        value_bias = module.token_output.weight @ module.token_value.bias + module.token_output.bias
        expected = weights @ (tokens @ value_weight.T + value_bias)
        output = module(queries, keys, contents)
    torch.testing.assert_close(output, expected, rtol=1e-10, atol=1e-10)
    if num_heads > 1:
        # The chunk-level relevance is one set of weights per query, not one per head: splitting the
        # relevance projections into heads would be a different function.
        per_head = torch.einsum(
            "bqhd,bmhd->bhqm",
            projected_queries.view(2, 3, num_heads, -1), projected_keys.view(2, chunks, num_heads, -1),
        ).mul(1 / math.sqrt(FEATURES // num_heads)).softmax(-1)
        assert not torch.allclose(per_head.mean(1), weights)


@pytest.mark.parametrize(
    "chunks, chunk_length, top_k, num_heads, use_position_encoding",
    [(5, 4, 2, 1, True), (5, 4, 3, 2, True), (4, 3, 1, 4, False), (3, 2, 5, 2, True)],
)
def test_matches_reference_loop(chunks, chunk_length, top_k, num_heads, use_position_encoding):
    module = make(top_k=top_k, num_heads=num_heads, use_position_encoding=use_position_encoding)
    queries, keys, contents = memory(chunks=chunks, chunk_length=chunk_length)
    mask = torch.rand(2, 3, chunks, generator=torch.Generator().manual_seed(3)) < 0.6
    mask[0, 0] = False  # a query that may read nothing
    mask[1, 1] = True
    with torch.no_grad():
        for call_mask in (None, mask):
            expected = reference(module, queries, keys, contents, call_mask)
            output = module(queries, keys, contents, call_mask)
            torch.testing.assert_close(output, expected, rtol=1e-10, atol=1e-10)


def test_masked_chunk_has_no_influence():
    module = make(top_k=3)
    queries, keys, contents = memory()
    mask = torch.ones(2, 3, 5, dtype=torch.bool)
    mask[:, :, 1] = False
    changed_contents = contents.clone()
    changed_contents[:, 1] = 10.0 * torch.randn_like(contents[:, 1])
    changed_keys = keys.clone()
    changed_keys[:, 1] = 10.0 * torch.randn_like(keys[:, 1])  # would rank first if it were allowed
    with torch.no_grad():
        masked = module(queries, keys, contents, mask)
        torch.testing.assert_close(module(queries, changed_keys, changed_contents, mask), masked, rtol=0, atol=0)
        unmasked = module(queries, keys, contents)
        assert not torch.allclose(module(queries, changed_keys, changed_contents), unmasked)
        assert not torch.allclose(unmasked, masked)


def test_fewer_allowed_chunks_than_k_reads_only_the_allowed():
    """With 2 chunks allowed and k = 4, the result equals reading a memory of just those 2 chunks."""
    module = make(top_k=4)
    queries, keys, contents = memory(chunks=6)
    allowed = [1, 4]
    mask = torch.zeros(2, 3, 6, dtype=torch.bool)
    mask[:, :, allowed] = True
    with torch.no_grad():
        output = module(queries, keys, contents, mask)
        expected = module(queries, keys[:, allowed], contents[:, allowed])
    torch.testing.assert_close(output, expected, rtol=1e-12, atol=1e-12)


def test_only_the_top_k_chunks_influence_the_output():
    module = make(top_k=2)
    queries, keys, contents = memory(batch=1, queries=1, chunks=5)
    with torch.no_grad():
        projected_keys = keys @ module.relevance_key.weight.T
        logits = (queries @ module.relevance_query.weight.T) @ projected_keys.transpose(1, 2)
        order = logits[0, 0].argsort(descending=True).tolist()
        selected, unselected = order[:2], order[2:]
        output = module(queries, keys, contents)
        for chunk in unselected:  # new contents; the key, hence the ranking, is kept
            changed = contents.clone()
            changed[0, chunk] = 5.0 * torch.randn_like(contents[0, chunk])
            torch.testing.assert_close(module(queries, keys, changed), output, rtol=0, atol=0)
        for chunk in selected:
            changed = contents.clone()
            changed[0, chunk] = 5.0 * torch.randn_like(contents[0, chunk])
            assert not torch.allclose(module(queries, keys, changed), output)
        all_chunks = make(top_k=5)(queries, keys, contents)
        assert not torch.allclose(all_chunks, output)


def test_no_gradient_into_memory():
    module = make(top_k=2, num_heads=2)
    queries, keys, contents = memory()
    for tensor in (queries, keys, contents):
        tensor.requires_grad_(True)
    module(queries, keys, contents).sum().backward()
    for stored in (keys, contents):
        assert stored.grad is None or not stored.grad.any()
    assert queries.grad is not None and queries.grad.abs().sum() > 0
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_batch_elements_are_independent():
    module = make(top_k=2, num_heads=2)
    queries, keys, contents = memory()
    mask = torch.ones(2, 3, 5, dtype=torch.bool)
    with torch.no_grad():
        output = module(queries, keys, contents, mask)
        queries[1] += torch.randn_like(queries[1])
        contents[1] += torch.randn_like(contents[1])
        keys[1] = -keys[1]
        mask[1, :, :2] = False
        changed = module(queries, keys, contents, mask)
    torch.testing.assert_close(changed[0], output[0], rtol=0, atol=0)
    assert not torch.allclose(changed[1], output[1])


def test_position_encoding_makes_token_order_matter():
    queries, keys, contents = memory(chunk_length=5)
    reversed_contents = contents.flip(2)  # same chunk means, so the same keys
    with torch.no_grad():
        encoded = make(top_k=2)
        assert not torch.allclose(encoded(queries, keys, reversed_contents), encoded(queries, keys, contents))
        for num_heads in (1, 2):  # attention over a set of tokens ignores their order, per head
            plain = make(top_k=2, num_heads=num_heads, use_position_encoding=False)
            torch.testing.assert_close(plain(queries, keys, reversed_contents), plain(queries, keys, contents))


def test_position_encoding_layout():
    length, size = 5, 8
    encoding = position_encoding(length, size, dtype=torch.float64)
    assert encoding.shape == (length, size)
    inverse_frequencies = torch.tensor([1e4 ** (-e / size) for e in (0, 2, 4, 6)], dtype=torch.float64)
    for row, position in enumerate(range(length - 1, -1, -1)):  # newest (last) token is position 0
        angles = position * inverse_frequencies
        torch.testing.assert_close(encoding[row], torch.cat([angles.sin(), angles.cos()]))
    torch.testing.assert_close(encoding[-1], torch.tensor([0.0] * 4 + [1.0] * 4, dtype=torch.float64))
    assert position_encoding(3, 7).shape == (3, 7)  # odd sizes drop the last cosine


@pytest.mark.parametrize(
    "chunks, chunk_length, top_k, num_heads, num_queries",
    [(5, 4, 2, 1, 1), (3, 2, 8, 2, 4), (6, 1, 1, 4, 3), (1, 3, 1, 8, 2), (0, 4, 2, 1, 2)],
)
def test_shapes(chunks, chunk_length, top_k, num_heads, num_queries):
    module = make(top_k=top_k, num_heads=num_heads)
    queries, keys, contents = memory(batch=3, queries=num_queries, chunks=chunks, chunk_length=chunk_length)
    with torch.no_grad():
        output = module(queries, keys, contents)
    assert output.shape == (3, num_queries, FEATURES)
    assert torch.isfinite(output).all()
    if chunks == 0:  # an empty memory reads zeros
        assert not output.any()


def test_query_with_every_chunk_blocked_reads_zeros():
    module = make(top_k=2)
    queries, keys, contents = memory()
    mask = torch.ones(2, 3, 5, dtype=torch.bool)
    mask[0, 1] = False
    queries.requires_grad_(True)
    output = module(queries, keys, contents, mask)
    assert torch.equal(output[0, 1], torch.zeros(FEATURES, dtype=output.dtype))
    assert output[0, 0].abs().sum() > 0
    torch.testing.assert_close(output, module(queries, keys, contents, mask), rtol=0, atol=0)  # deterministic
    output.sum().backward()
    assert torch.isfinite(queries.grad).all() and not queries.grad[0, 1].any()
    assert all(torch.isfinite(parameter.grad).all() for parameter in module.parameters())


def test_variance_scaling_initialisation():
    torch.manual_seed(0)
    module = HCAM(HCAMConfig(input_size=256, memory_size=128, feature_size=256, top_k=2, init_scale=2.0))
    for layer, fan_in in ((module.relevance_query, 256), (module.token_key, 128), (module.token_output, 256)):
        assert abs(layer.weight.std().item() / math.sqrt(2.0 / fan_in) - 1.0) < 0.05
        assert layer.weight.abs().max() <= 2.0 * math.sqrt(2.0 / fan_in) / 0.87962566 + 1e-6
    assert module.relevance_query.bias is None and module.relevance_key.bias is None
    assert not any(layer.bias.any() for layer in (module.token_query, module.token_key, module.token_value))
    assert isinstance(module.token_output, nn.Linear) and not module.token_output.bias.any()


def test_config_rejects_heads_that_do_not_divide_features():
    with pytest.raises(ValueError):
        HCAMConfig(input_size=4, memory_size=4, feature_size=6, top_k=1, num_heads=4)


def test_reading_few_or_many_chunks_gives_the_same_result():
    """Few reads project only the selected chunks' tokens, many reads project every token first:
    the two orders of the same linear maps must agree."""
    torch.manual_seed(0)
    module = HCAM(HCAMConfig(input_size=12, memory_size=10, feature_size=8, top_k=2, num_heads=2))
    contents = torch.randn(3, 9, 4, 10)
    keys = chunk_summaries(contents)
    query = torch.randn(3, 1, 12)
    few = module(query, keys, contents)  # 1 query × 2 chunks < 9 chunks: gather first
    many = module(query.expand(3, 6, 12), keys, contents)  # 6 × 2 ≥ 9: project all first
    assert torch.allclose(few[:, 0], many[:, 0], atol=1e-6)
    assert torch.allclose(many[:, 0], many[:, 5], atol=1e-6)
