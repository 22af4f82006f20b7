from .class_stats import (class_gini, class_prior, compute_class_stats,
                          count_label_map, frequency_groups, gini_coefficient,
                          image_frequencies, list_label_files,
                          load_class_counts, load_class_stats, read_label_png,
                          require_stats_field, save_class_stats)
from .class_weights import (GENERATORS, class_weights_from_stats,
                            load_weight_spec)

__all__ = [
    'class_gini', 'class_prior', 'compute_class_stats', 'count_label_map',
    'frequency_groups', 'gini_coefficient', 'image_frequencies',
    'list_label_files', 'load_class_counts', 'load_class_stats',
    'read_label_png', 'require_stats_field', 'save_class_stats',
    'GENERATORS', 'class_weights_from_stats', 'load_weight_spec'
]
