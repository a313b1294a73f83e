"""VLM-R1's data as is: OD answers as fenced JSON lists (or None) pass ``vlmr1 data check``; the accuracy of a seg
row is its mask IoU; the ``llm`` method asks a real HTTP judge and refuses to start without one."""

import http.server
import json
import logging
import threading

import numpy as np
import pytest
from PIL import Image

from vlmr1.data.check import check_sources
from vlmr1.data.loading import SourceFile
from vlmr1.geometry import fit_contour, mask_to_rle
from vlmr1.rewards import REWARD_REGISTRY, validate_accuracy_method

DOG = '```json\n[{"bbox_2d": [10, 10, 50, 50], "label": "dog"}]\n```'


def od_line(answer, **extra):
    return json.dumps({"image": "a.png", "conversations": [
        {"from": "human", "value": "<image>Locate every dog."}, {"from": "gpt", "value": answer}], **extra})


def test_vlm_r1_od_answers_pass_data_check(tmp_path):
    Image.new("RGB", (64, 64)).save(tmp_path / "a.png")
    data = tmp_path / "od.jsonl"
    data.write_text("\n".join([
        od_line(DOG), od_line("None"), od_line(f"<answer>{DOG}</answer>"), od_line("[]"),
        od_line("a dog"), od_line('```json\n[{"bbox_2d": [10, 10], "label": "dog"}]\n```'),
        od_line('[{"bbox_2d": [10, 10, 50, 50]}]'), od_line("None", objects=[{"bbox": [1, 2], "label": "x"}]),
    ]) + "\n")
    report = check_sources([SourceFile(str(data), str(tmp_path))], "od")
    assert [(p.line, p.kind) for p in report.problems] == [
        (5, "unparsable_answer"), (6, "unparsable_answer"), (7, "unparsable_answer"), (8, "bad_field")]


def test_accuracy_of_a_seg_row_is_its_mask_iou():
    mask = np.zeros((64, 64), bool)
    mask[16:48, 12:52] = True
    answer = "<answer>" + json.dumps(fit_contour(mask, "parametric", 8, "fast").to_json_dict(1)) + "</answer>"
    row = {"solution": [answer] * 2, "mask": [mask_to_rle(mask)] * 2, "task_type": ["seg"] * 2,
           "accu_reward_method": ["default"] * 2}
    completions = [answer, '<answer>{"x": [32, 5, 0, 0, 0, 0, 0, 0], "y": [32, 0, 5, 0, 0, 0, 0, 0]}</answer>']
    accuracy = REWARD_REGISTRY["accuracy"](completions=completions, **row)
    assert accuracy == REWARD_REGISTRY["seg_iou"](completions=completions, **row)
    assert accuracy[0] > 0.8 and accuracy[1] < 0.2


def test_the_choice_of_method_is_logged_once(caplog):
    rows = {"solution": ["[0, 0, 10, 10]"] * 3, "task_type": ["rec"] * 3, "accu_reward_method": ["mcq"] * 3}
    with caplog.at_level(logging.INFO, logger="vlmr1.tasks"):
        REWARD_REGISTRY["accuracy"](completions=["[0, 0, 10, 10]"] * 3, **rows)
        REWARD_REGISTRY["accuracy"](completions=["[0, 0, 10, 10]"] * 3, **rows)
    lines = [r.getMessage() for r in caplog.records if "accu_reward_method 'mcq'" in r.getMessage()]
    assert lines == ["accuracy: task 'rec' scores rows with accu_reward_method 'mcq' by 'iou'"]


class Judge(http.server.BaseHTTPRequestHandler):
    """An OpenAI-compatible chat endpoint that says 1 when the student's response contains the solution."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        question = body["messages"][-1]["content"]
        student, solution = (part.split(": ", 1)[1] for part in question.split("\n"))
        reply = "1" if solution.lower() in student.lower() else "0"
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_llm_method_asks_the_judge(monkeypatch):
    server = http.server.HTTPServer(("127.0.0.1", 0), Judge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("OPENAI_API_BASE", f"http://127.0.0.1:{server.server_port}/v1")
        assert validate_accuracy_method("llm") == "llm"
        out = REWARD_REGISTRY["accuracy"](completions=["<answer>It is a golden retriever.</answer>",
                                                       "<answer>a cat</answer>"],
                                          solution=["Golden Retriever"] * 2, accu_reward_method=["llm"] * 2)
        assert out == [1.0, 0.0]
        monkeypatch.setenv("OPENAI_API_BASE", "http://127.0.0.1:9/v1")  # nothing listens: exact match instead
        out = REWARD_REGISTRY["accuracy"](completions=["<answer>golden retriever</answer>"],
                                          solution=["Golden Retriever"], accu_reward_method=["llm"])
        assert out == [1.0]
    finally:
        server.shutdown()


def test_llm_method_without_a_judge_stops_before_training(monkeypatch):
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    with pytest.raises(ValueError, match="OPENAI_API_BASE"):
        validate_accuracy_method("llm")
