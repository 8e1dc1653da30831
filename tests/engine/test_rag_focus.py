"""engine.rag.focus: each passage cut to the clauses that share words with the question (a LlamaIndex postprocessor)."""

from __future__ import annotations

from llama_index.core.schema import NodeWithScore, TextNode

from engine.rag.focus import ClauseFocus, clauses

ARTICLE_105 = (
    "① 대법원장의 임기는 6년으로 하며, 중임할 수 없다.\n"
    "②대법관의 임기는 6년으로 하며, 법률이 정하는 바에 의하여 연임할 수 있다.\n"
    "③대법원장과 대법관이 아닌 법관의 임기는 10년으로 하며, 법률이 정하는 바에 의하여 연임할 수 있다.\n"
    "④법관의 정년은 법률로 정한다."
)


def test_clauses_split_on_numbered_clauses():
    assert [c[:1] for c in clauses(ARTICLE_105)] == ["①", "②", "③", "④"]
    assert clauses("대통령의 임기는 5년으로 하며, 중임할 수 없다.") == ["대통령의 임기는 5년으로 하며, 중임할 수 없다."]


def test_focus_keeps_the_best_clauses_in_order_and_never_edits_the_original():
    node = TextNode(text=ARTICLE_105, id_="제105조", metadata={"doc_id": "제105조"})
    out = ClauseFocus(keep=2).postprocess_nodes([NodeWithScore(node=node, score=0.5)], query_str="법관의 정년은?")
    text = out[0].node.get_content()
    # ④ shares 법관 and 정년; ② and ③ share 법관 (Kiwi splits 대법관 into its parts): the tie goes to the earlier ②
    assert text.startswith("②") and text.endswith("④법관의 정년은 법률로 정한다.") and "③" not in text
    assert node.get_content() == ARTICLE_105  # the retriever's node is untouched
    assert out[0].node.metadata["doc_id"] == "제105조" and out[0].score == 0.5


def test_short_passages_pass_through():
    node = TextNode(text="대통령의 임기는 5년으로 하며, 중임할 수 없다.", id_="제70조")
    out = ClauseFocus(keep=2).postprocess_nodes([NodeWithScore(node=node, score=1.0)], query_str="대통령 임기")
    assert out[0].node.get_content() == node.get_content()
