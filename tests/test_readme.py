"""README is a product page: short, and its CamVid table carries the numbers
of the study's generated page (mean ± std over seeds, report split) for
every loss whose seeds have all finished."""
from tests.conftest import REPO_ROOT

README = (REPO_ROOT / 'README.md').read_text()
PAGE = (REPO_ROOT / 'docs' / 'results' / 'camvid.md').read_text()


def rows(table_text: str):
    return [[c.strip().strip('*') for c in line.strip('|').split('|')]
            for line in table_text.splitlines()
            if line.startswith('|') and not line.startswith('|---')]


def test_readme_is_short():
    assert len(README.splitlines()) <= 180


def test_results_table_matches_the_page():
    table = README.split('## Results: CamVid')[1].split('\n## ')[0]
    readme = rows(table)
    assert readme[0] == ['loss (chosen setting)', 'mIoU', 'tail mIoU']
    lines = PAGE.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith('| Loss | mIoU | aAcc |'))
    end = next(i for i in range(start, len(lines))
               if not lines[i].startswith('|'))
    page = rows('\n'.join(lines[start:end]))
    tail = page[0].index('tail')
    # the losses whose selected setting has finished every seed (mean ±
    # std); the page also lists the ones still under way
    assert readme[1:] == [[r[0], r[1], r[tail]] for r in page[1:]
                          if '±' in r[1]]
    assert len(readme) > 8
