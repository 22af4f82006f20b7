# NYU Depth v2 labelled set, 13 classes (40 -> 13 mapping), otherwise as
# nyu_v2_40.py. Class statistics:
#   python tools/analysis_tools/class_stats.py configs/_base_/datasets/nyu_v2_13.py --out data/nyu_v2/class_stats13.json
_base_ = ['./nyu_v2_40.py']
dataset_type = 'NYUv2Dataset13'
num_classes = 13
class_stats_file = 'data/nyu_v2/class_stats13.json'
# nyu_v2_40.py's pipelines, their label check at 13 classes (the base's
# lists were built with its num_classes = 40)
train_pipeline = [
    dict(t, num_classes=num_classes) if t.type == 'CheckLabelRange' else t
    for t in _base_.train_pipeline
]
test_pipeline = [
    dict(t, num_classes=num_classes) if t.type == 'CheckLabelRange' else t
    for t in _base_.test_pipeline
]
train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_prefix=dict(seg_map_path='ann_dir13/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_prefix=dict(seg_map_path='ann_dir13/test'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(class_stats_file=class_stats_file)
test_evaluator = val_evaluator
