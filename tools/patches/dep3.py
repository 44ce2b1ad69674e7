# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Commit messages of the series: DEP-3 headers from module docstrings.

A patch's subject and description come from the docstring of the first
module it copies (or the Entry's subject); a module that continues an
upstream change of the 2013 blueprint says so in a paragraph
'Mirrors "<subject>" (...)', which becomes the Origin header rather than
the subject, so that nobody takes the patch for a backport of it.
"""

import ast
import collections
import re
import textwrap


class GenError(Exception):
    pass


def read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def docstring_parts(path):
    """(subject, summary, origin, other paragraphs) of a module docstring.

    The summary line is the subject. A module that continues an
    upstream change names it in a paragraph 'Mirrors "<subject>" (...)',
    which is returned as origin; a module beyond the blueprint (it says
    so in a paragraph 'Beyond ...' or 'Related upstream: ...') and a
    module of the mechanism have no origin (None).
    """
    doc = ast.get_docstring(ast.parse(read(path)), clean=True)
    if not doc:
        raise GenError('%s has no module docstring' % path)
    paragraphs = [p.strip() for p in doc.split('\n\n') if p.strip()]
    summary = paragraphs[0]
    mirrors = [p for p in paragraphs if p.startswith('Mirrors')]
    subject = ' '.join(summary.split()).rstrip('.')
    if not mirrors:
        # Ours alone: a rule beyond the blueprint says so ("Beyond ..."),
        # and the mechanism never had an upstream counterpart.
        return subject, summary, None, paragraphs[1:]
    origin = ' '.join(mirrors[0].split())
    if not re.match(r'Mirrors "([^"]+)"', origin):
        raise GenError('%s: the "Mirrors" paragraph quotes no subject'
                       % path)
    # The subject says what this patch does; the upstream change it
    # continues is named in the header (Origin), never posed as.
    rest = [p for p in paragraphs[1:] if p is not mirrors[0]]
    return subject, summary, origin[len('Mirrors '):], rest


def dep3_field(name, paragraphs):
    """A DEP-3 field, continuation lines indented, empty lines as ' .'."""
    lines = []
    for i, para in enumerate(paragraphs):
        if i:
            lines.append(' .')
        # A bulleted list keeps one item to a line.
        items = re.split(r'\n(?=\* )', para.strip())
        for j, item in enumerate(items):
            bullet = item.startswith('* ')
            lines.extend(textwrap.wrap(
                ' '.join(item.split()), 72, break_on_hyphens=False,
                break_long_words=False,
                initial_indent='%s: ' % name if not i and not j else ' ',
                subsequent_indent='   ' if bullet else ' '))
    return '\n'.join(lines)


Upstream = collections.namedtuple(
    'Upstream', ['subjects', 'commits', 'change_ids', 'reviews', 'bugs'])


def upstream_refs(text):
    """What a "Mirrors" (or "Related upstream") paragraph names."""
    text = ' '.join(text.split())
    reviews = []
    for group in re.findall(r'reviews? (\d+(?:(?:, | and )\d+)*)', text):
        reviews.extend(re.findall(r'\d+', group))
    return Upstream(
        subjects=re.findall(r'"([^"]+)"', text),
        commits=re.findall(r'nova commit ([0-9a-f]{7,40})', text),
        change_ids=re.findall(r'Change-Id (I[0-9a-f]{40})', text),
        reviews=reviews,
        bugs=re.findall(r'(?:Closes-Bug|Partial-Bug|[Bb]ug) (\d{6,})',
                        text))


def dep3_message(subject, description, origin, author_name, author_email,
                 last_update):
    """The commit message: subject, blank line, DEP-3 fields."""
    fields = [dep3_field('Description', description),
              'Author: %s <%s>' % (author_name, author_email)]
    if origin is None:
        # Our own change, with no upstream counterpart.
        fields.append('Origin: vendor')
    else:
        # Ours too: the upstream change it continues was written for the
        # nova of 2014, and is named so that nobody takes this patch for
        # a backport of it.
        fields.append(dep3_field(
            'Origin', ['vendor, continues upstream ' + origin]))
        for bug in upstream_refs(origin).bugs:
            fields.append('Bug: https://bugs.launchpad.net/nova/+bug/%s'
                          % bug)
    # A behaviour change that nova has not been asked to take.
    fields.append('Forwarded: no')
    fields.append('Last-Update: %s' % last_update)
    return '\n'.join([subject, ''] + fields + [''])
