from .class_stats import (class_prior, compute_class_stats, count_label_map,
                          frequency_groups, list_label_files, load_class_counts,
                          load_class_stats, read_label_png, save_class_stats)

__all__ = [
    'class_prior', 'compute_class_stats', 'count_label_map',
    'frequency_groups', 'list_label_files', 'load_class_counts',
    'load_class_stats', 'read_label_png', 'save_class_stats'
]
