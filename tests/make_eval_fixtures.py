#!/usr/bin/env python3
"""Generate the reference fixtures of m2u-eval's metric library (tests/fixtures/eval/), read by
tests/eval/test_caption_metrics.c and tests/eval/test_distribution_metrics.c.

Python (and Java) are only used to *make* reference files; the C toolkit never runs them.

Pinned versions (the script refuses to run with others, since outputs must be identical across
regenerations):
    pycocoevalcap 1.2 (bundles stanford-corenlp-3.4.1.jar and meteor-1.5.jar),
    numpy 1.26.4, scipy 1.17.1, Java: OpenJDK 17 (/usr/bin/java),
    WordNet 3.0 as Debian 12 ships it (wordnet-base, wordnet-sense-index 1:3.0-37: /usr/share/wordnet)

Usage:  python3 tests/make_eval_fixtures.py      (from the repository root or anywhere)

What it runs (see tests/fixtures/eval/README.md):
  * pycocoevalcap's PTBTokenizer, Bleu(4), Meteor(), Rouge(), Cider() on CAPTION_GROUPS below, exactly
    as pycocoevalcap/eval.py does (tokenise gts and res, then score);
  * the same tokenizer on extra sentences (TOKENIZE_ONLY + the captions and answers of
    data/demo/music_text.jsonl) for the tokenizer test;
  * meteor-1.5.jar once more with only the exact and stem modules (-m "exact stem" -w "1.0 0.6");
  * full METEOR (pycocoevalcap's Meteor(): exact, stem, synonym, paraphrase) on 322 groups
    (meteor_full): the synonym tables rebuilt from /usr/share/wordnet by the rules of
    cmu-mtlab/meteor scripts/build_wordnet_files.py and compared with the jar's; every word's
    synsets from the jar's SynonymDictionary; the subset of WordNet and of paraphrase-en.gz those
    sentences can touch, written to tests/fixtures/eval/meteor_data/ for the C test;
  * scipy.linalg.sqrtm Frechet distances on seeded random embedding sets, and numpy KL divergences.
"""
import importlib.metadata
import json
import os
import subprocess
import sys

import numpy
import scipy
import scipy.linalg

PINNED = {
    "pycocoevalcap": (importlib.metadata.version("pycocoevalcap"), "1.2"),
    "numpy": (numpy.__version__, "1.26.4"),
    "scipy": (scipy.__version__, "1.17.1"),
}
for _name, (_have, _want) in PINNED.items():
    if _have != _want:
        sys.exit(f"make_eval_fixtures: need {_name}=={_want}, found {_have}")

import pycocoevalcap  # noqa: E402
from pycocoevalcap.bleu.bleu import Bleu  # noqa: E402
from pycocoevalcap.cider.cider import Cider  # noqa: E402
from pycocoevalcap.meteor.meteor import Meteor  # noqa: E402
from pycocoevalcap.rouge.rouge import Rouge  # noqa: E402
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer  # noqa: E402

ROOT = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(ROOT)
OUT = os.path.join(ROOT, "fixtures", "eval")
PKG = os.path.dirname(os.path.dirname(os.path.abspath(sys.modules[PTBTokenizer.__module__].__file__)))
VERSIONS = "pycocoevalcap=1.2,numpy=1.26.4,scipy=1.17.1"

# (candidate, [references]).  Written for m2u (CC0): music captions plus sentences that exercise
# the tokenizer (punctuation, contractions, quotes, hyphens, numbers, brackets, case, repeats).
CAPTION_GROUPS = [
    ("A slow, sad piano piece in D minor.",
     ["A slow and melancholic piano piece in D minor.", "Sad solo piano, slow tempo, D minor key.",
      "A mournful piano ballad played slowly in the key of D minor."]),
    ("An upbeat pop song with drums and synths.",
     ["An energetic pop track with punchy drums and bright synthesizers.",
      "Upbeat pop music featuring synths, drums and a catchy melody."]),
    ("The guitar isn't in tune.", ["The guitar is out of tune.", "The guitar's strings aren't tuned."]),
    ("It's a jazz trio: piano, bass & drums.",
     ["A jazz trio with piano, double bass and drums.", "Piano, bass and drums play jazz together."]),
    ("A fast rock song at 140 BPM in E minor.",
     ["A fast rock track at 140 bpm in E minor.", "Rock music, 140 beats per minute, E minor.",
      "An energetic rock song in the key of E minor at a tempo of 140."]),
    ("\"Happy\" music with hand-claps and whistling.",
     ["Cheerful music with handclaps and a whistled melody.", "A happy tune: hand claps, whistling."]),
    ("Orchestral music (strings and brass) that sounds epic!",
     ["An epic orchestral piece with strings and brass.", "Epic film score with sweeping strings, loud brass."]),
    ("a calm ambient pad", ["A calm ambient soundscape with soft pads.", "Calm, ambient, atmospheric pads."]),
    ("the the the the", ["The music is quiet.", "A quiet piece of music."]),
    ("music", ["A short piece of electronic music.", "Electronic music with a steady beat."]),
    ("...", ["A solo violin plays a slow melody.", "Slow violin solo."]),
    ("A violin and a cello play a duet in G major; it's slow and romantic.",
     ["A romantic, slow duet for violin and cello in G major.", "Violin and cello duet, G major, slow."]),
    ("Drums, drums, drums -- and more drums.",
     ["A percussion-only track with many drums.", "Lots of drums and percussion."]),
    ("The singer's voice is soft; she's singing in French.",
     ["A soft female voice sings in French.", "A woman sings softly in French over acoustic guitar."]),
    ("They're playing a waltz in 3/4 time.",
     ["A waltz in three-four time.", "The band plays a waltz in 3/4.", "Waltz, triple meter, 3/4 time signature."]),
    ("A lo-fi hip-hop beat with vinyl crackle.",
     ["Lo-fi hip hop with vinyl crackle and a mellow beat.", "A chill lofi hip-hop instrumental with crackling vinyl."]),
    ("We'll hear a choir singing in Latin.", ["A choir sings in Latin.", "Choral music sung in Latin by a large choir."]),
    ("You can't dance to this; it's too slow.",
     ["This music is too slow to dance to.", "A very slow piece that is not danceable."]),
    ("I'd say it's blues in A.", ["A blues song in A.", "Twelve-bar blues in the key of A major."]),
    ("The tempo is 60 bpm, the key is C# minor.",
     ["Slow tempo of 60 bpm in C# minor.", "A piece in C sharp minor at 60 beats per minute."]),
    ("A 1980s synth-pop track, very retro.", ["Retro synth-pop from the 1980s.", "An '80s style synthpop song."]),
    ("Music for a video game, 8-bit chiptune.",
     ["An 8-bit chiptune for a video game.", "Chiptune video game music with square waves."]),
    ("A saxophone solo over a walking bass line.",
     ["A saxophone improvises over a walking bass.", "Jazz sax solo with walking bass and brushed drums."]),
    ("Heavy metal with screaming vocals and double-kick drums!!!",
     ["Heavy metal with harsh screamed vocals and double bass drums.", "Extreme metal: screams, fast double kick."]),
    ("Is this a lullaby?", ["A gentle lullaby sung softly.", "A soft lullaby with a music box."]),
    ("A flute melody, accompanied by harp.", ["A flute plays a melody with harp accompaniment.", "Harp and flute duet."]),
    ("Reggae with off-beat guitar chops and deep bass.",
     ["A reggae song with off-beat guitar skanks and a deep bassline.", "Reggae: offbeat guitar, heavy bass."]),
    ("An EDM drop at 128 BPM.", ["Electronic dance music with a big drop at 128 BPM.", "EDM track, 128 bpm, heavy drop."]),
    ("Country music with banjo and fiddle, in G.",
     ["A country song with banjo and fiddle in G major.", "Bluegrass-style country with fiddle and banjo."]),
    ("The piano plays C-E-G, a C major chord.", ["A piano plays a C major chord.", "Piano chord: C major triad."]),
    ("A string quartet (two violins, viola, cello).",
     ["A string quartet of two violins, a viola and a cello.", "Classical string quartet music."]),
    ("Dark, brooding techno.", ["Dark techno with a brooding atmosphere.", "A dark and hypnotic techno track."]),
    ("Bossa nova guitar, soft vocals, 'relaxed' mood.",
     ["A relaxed bossa nova song with nylon guitar and soft singing.", "Soft bossa nova with gentle vocals."]),
    ("A march played by a brass band at 120 bpm.",
     ["A brass band plays a march at 120 beats per minute.", "Military march for brass band."]),
    ("Soft rain sounds and a piano.", ["A piano plays softly over the sound of rain.", "Rain ambience with gentle piano."]),
    ("It is in B minor.", ["It is in B minor.", "The key is B minor."]),
    ("The drummer doesn't stop: fills, rolls, crashes.",
     ["The drummer plays constant fills and rolls.", "Busy drumming with many fills and cymbal crashes."]),
    ("An a cappella group sings \"Amazing Grace\".",
     ["A vocal group sings Amazing Grace without instruments.", "A cappella singing of a hymn."]),
    ("Piano piano piano piano piano.", ["A piano piece.", "Solo piano music."]),
    ("Funky bass, wah-wah guitar & horns.",
     ["A funk track with slap bass, wah guitar and a horn section.", "Funky music: bass, wah-wah guitar, horns."]),
    ("A sitar plays a raga; tabla accompanies it.",
     ["Indian classical music: sitar raga with tabla.", "A sitar and tabla perform a raga."]),
    ("Trap beat w/ 808s and hi-hats.",
     ["A trap beat with 808 bass and rolling hi-hats.", "Hip-hop trap instrumental, heavy 808s."]),
    ("The organ's sound fills the church.", ["A pipe organ plays in a church.", "Church organ music with reverb."]),
    ("Latin percussion - congas, bongos, timbales.",
     ["Latin percussion with congas, bongos and timbales.", "Salsa rhythm on congas and timbales."]),
    ("A slow blues shuffle; the harmonica wails.",
     ["A slow blues shuffle with wailing harmonica.", "Blues harmonica over a shuffle rhythm."]),
    ("Gregorian chant.", ["Monks singing Gregorian chant.", "Plainchant sung in unison by male voices."]),
    ("A children's song with xylophone, 100% cheerful.",
     ["A cheerful children's song with xylophone.", "Happy kids' music featuring a xylophone."]),
    ("She sings, \"I won't give up\", over strings.",
     ["A female singer sings over a string section.", "Emotional pop ballad with strings and a female vocal."]),
    ("Noise.", ["Harsh noise music.", "Static and distorted noise."]),
    ("Clarinet, bassoon and oboe: a woodwind trio.",
     ["A woodwind trio of clarinet, oboe and bassoon.", "Woodwind chamber music."]),
    ("A $5 ukulele strummed at 90 bpm.", ["A ukulele strummed at 90 bpm.", "Cheap-sounding ukulele strumming."]),
    ("Dubstep wobbles... then silence.", ["Dubstep with wobble bass followed by silence.", "Wobbly dubstep bass."]),
    ("A harpsichord plays Bach-like counterpoint.",
     ["Baroque counterpoint on a harpsichord.", "A harpsichord piece in the style of Bach."]),
    ("THE MUSIC IS LOUD AND FAST.", ["The music is loud and fast.", "Loud, fast music."]),
    ("Mellow R&B with Rhodes piano.", ["Mellow R&B with a Rhodes electric piano.", "Smooth R&B, electric piano."]),
    ("Trumpet fanfare {bright}, [loud].",
     ["A bright, loud trumpet fanfare.", "Fanfare for trumpets."]),
    ("A tango in 2/4 with bandoneon and violin.",
     ["A tango with bandoneon and violin in 2/4 time.", "Argentine tango music."]),
    ("Guitar feedback; amp hum; it's noisy.", ["Noisy guitar feedback and amplifier hum.", "Feedback and hum from a guitar amp."]),
    ("A Celtic jig on tin whistle and bodhrán.",
     ["A Celtic jig played on tin whistle and bodhran.", "Irish folk dance music with whistle."]),
    ("Vaporwave: slowed-down 80's samples.",
     ["Vaporwave with slowed 1980s samples.", "Slowed-down retro samples, vaporwave style."]),
    ("Bells ring at 3:45 p.m. every day.", ["Church bells ringing.", "Bells ring out in the afternoon."]),
    ("Don't you love this catchy chorus?", ["A pop song with a catchy chorus.", "Catchy chorus and upbeat melody."]),
]

# Sentences used only for the tokenizer test.
TOKENIZE_ONLY = [
    "Hello, world!", "It's 5:30 a.m. -- time to go.", "He said \"no\" (twice).", "e-mail me at x@y.com",
    "She'll've gone, y'all.", "I can't, won't, shouldn't; they'd've.", "3.14 is pi; 1,000,000 is a million.",
    "Mr. Smith went to Washington.", "U.S.A. is big.", "rock'n'roll", "C# and Bb are keys.",
    "50% off... really?!", "A -- B", "A - B", "well-known, state-of-the-art", "#1 hit", "1/2 note and 1/4 note",
    "'single quotes'", "``backticks''", "Tabs\tand  spaces", "O'Neil's guitar", "gonna wanna gotta",
    "cannot", "'tis the season", "A&B and AT&T", "20-30 seconds", "The 1990's were great.", "x = y + z",
    "<html>", "{curly} [square] (round)", "the end.", "Wait...what?", "hmm!?", "$100 and 50c",
    "100 km/h", "Dr. Dre's beat", "don't DON'T Don't", "naïve café résumé", "it's-a me", "A.B.C",
    "'80s music", "rock 'n' roll", "can't-stop", "ca n't", "12:30pm", "@user #tag", "a+b=c",
    "Four-on-the-floor kick.", "hi-hat's", "mid-'90s", "Let's go!", "you're we're they're I'm",
    "I've", "Who'd've thought?", "'Cause I said so", "yes/no", "\\backslash", "3rd 2nd 1st",
    "U.K.'s", "etc. and so on.", "e.g. this", "Inc. Corp. Ltd.", "...and then", "-hyphen start",
    "end hyphen-", "'quoted'", "50's", "2000s", "Jan. 5th", "It cost $3.50.", "x*y", "a_b", "~tilde~",
    "ümlaut Über", "A  slow , sad piano .",
]

# extra words for the Snowball English stemmer test (every step and exception of Porter2)
STEM_EXTRA = [
    "caresses", "ponies", "ties", "cries", "gas", "gaps", "kiwis", "this", "us", "bus", "agreed", "feed", "hoped",
    "hopping", "filing", "luxuriating", "conflated", "troubled", "sized", "happy", "cry", "by", "say", "relational",
    "conditional", "valenci", "hesitanci", "digitizer", "conformabli", "radicalli", "differentli", "vileli",
    "analogousli", "vietnamization", "predication", "operator", "feudalism", "decisiveness", "hopefulness",
    "callousness", "formaliti", "sensitiviti", "sensibiliti", "triplicate", "formative", "formalize", "electriciti",
    "electrical", "hopeful", "goodness", "revival", "allowance", "inference", "airliner", "gyroscopic", "adjustable",
    "defensible", "irritant", "replacement", "adjustment", "dependent", "adoption", "homologou", "communism",
    "activate", "angulariti", "homologous", "effective", "bowdlerize", "probate", "rate", "cease", "controll", "roll",
    "generous", "generate", "communication", "arsenal", "skis", "skies", "dying", "lying", "tying", "idly", "gently",
    "ugly", "early", "only", "singly", "sky", "news", "howe", "atlas", "cosmos", "bias", "andes", "inning", "outing",
    "canning", "herring", "earring", "proceed", "exceed", "succeed", "'s", "dog's", "dogs'", "youth", "yell", "boyish",
    "played", "playing", "plays", "melodic", "melodies", "melancholic", "rhythmically", "instrumentation",
    "orchestral", "guitars", "drummer", "drumming", "percussive", "singing", "sings", "sung", "vocals", "vocalist",
    "beautifully", "energetic", "energetically", "synthesizers", "synthesizer", "atmospheric", "ambience",
    "a", "be", "at", "eed", "ing", "sing", "bled", "abled", "fizzed", "tapped", "taped", "hoping", "yying", "ayy",
]

PTB_PUNCT = ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]


def ptb_raw(sentences):
    """Run CoreNLP's PTBTokenizer exactly as pycocoevalcap does (one sentence per line) and return
    the raw token lines (before punctuation removal) and the pycocoevalcap-filtered lines."""
    tok = PTBTokenizer()
    caps = {i: [{"caption": s}] for i, s in enumerate(sentences)}
    filtered = tok.tokenize(caps)
    # raw lines: the same command without the filtering step
    text = "\n".join(s.replace("\n", " ") for s in sentences)
    tmp = os.path.join(PKG, "tokenizer", "m2u_fixture_tmp.txt")
    with open(tmp, "wb") as f:
        f.write(text.encode())
    try:
        res = subprocess.run(["java", "-cp", "stanford-corenlp-3.4.1.jar", "edu.stanford.nlp.process.PTBTokenizer",
                              "-preserveLines", "-lowerCase", os.path.basename(tmp)],
                             cwd=os.path.join(PKG, "tokenizer"), stdout=subprocess.PIPE, check=True)
    finally:
        os.remove(tmp)
    lines = res.stdout.decode().split("\n")
    raw = [lines[i].rstrip() for i in range(len(sentences))]
    for i, r in enumerate(raw):
        check = " ".join(w for w in r.split(" ") if w not in PTB_PUNCT)
        assert check == filtered[i][0], (i, r, filtered[i][0])
    return raw, [filtered[i][0] for i in range(len(sentences))]


def meteor_subset(gts, res, modules, weights):
    """meteor-1.5.jar with a chosen module list, the same stdio protocol as pycocoevalcap's Meteor."""
    cmd = ["java", "-jar", "-Xmx2G", "meteor-1.5.jar", "-", "-", "-stdio", "-l", "en", "-norm",
           "-m", modules, "-w", weights]
    p = subprocess.Popen(cmd, cwd=os.path.join(PKG, "meteor"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    eval_line = "EVAL"
    for i in gts:
        hyp = res[i][0].replace("|||", "").replace("  ", " ")
        p.stdin.write(("SCORE ||| " + " ||| ".join(gts[i]) + " ||| " + hyp + "\n").encode())
        p.stdin.flush()
        eval_line += " ||| " + p.stdout.readline().decode().strip()
    p.stdin.write((eval_line + "\n").encode())
    p.stdin.flush()
    scores = [float(p.stdout.readline().strip()) for _ in gts]
    score = float(p.stdout.readline().strip())
    p.stdin.close()
    p.kill()
    p.wait()
    return score, scores


JAVA_HELPER = r"""
import java.io.*;
import java.nio.charset.StandardCharsets;
public class M2uMeteorHelper {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintStream out = new PrintStream(System.out, true, "UTF-8");
        org.tartarus.snowball.ext.englishStemmer st = new org.tartarus.snowball.ext.englishStemmer();
        edu.cmu.meteor.aligner.SynonymDictionary syn = null;
        if (args[0].equals("syn")) {
            String d = edu.cmu.meteor.util.Constants.DEFAULT_SYN_DIR_URL.toString();
            syn = new edu.cmu.meteor.aligner.SynonymDictionary(new java.net.URL(d + "/english.exceptions"),
                new java.net.URL(d + "/english.synsets"), new java.net.URL(d + "/english.relations"));
        }
        String line;
        while ((line = in.readLine()) != null) {
            if (args[0].equals("stem")) {
                st.setCurrent(line); st.stem(); out.println(st.getCurrent());
            } else if (args[0].equals("syn")) {
                java.util.TreeSet<Integer> set = new java.util.TreeSet<Integer>(syn.getSynSets(line));
                set.addAll(syn.getStemSynSets(line));
                StringBuilder b = new StringBuilder();
                for (int x : set) b.append(b.length() > 0 ? " " : "").append(x);
                out.println(b);
            } else {
                out.println(edu.cmu.meteor.util.Normalizer.normalizeLine(line, 0, true).toLowerCase());
            }
        }
    }
}
"""


def meteor_java(mode, lines):
    """Snowball English stems / Meteor's -norm normalisation / a word's synsets (SynonymDictionary
    getSynSets + getStemSynSets, sorted), straight from meteor-1.5.jar."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "M2uMeteorHelper.java")
        with open(src, "w") as f:
            f.write(JAVA_HELPER)
        jar = os.path.join(PKG, "meteor", "meteor-1.5.jar")
        res = subprocess.run(["java", "-cp", jar, src, mode], input="\n".join(lines).encode() + b"\n",
                             stdout=subprocess.PIPE, check=True)
    out = res.stdout.decode().split("\n")
    return out[:len(lines)]


def dump(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")


def captions():
    gts = {i: [{"caption": r} for r in refs] for i, (_, refs) in enumerate(CAPTION_GROUPS)}
    res = {i: [{"caption": c}] for i, (c, _) in enumerate(CAPTION_GROUPS)}
    tok = PTBTokenizer()
    gts_t = tok.tokenize(gts)
    res_t = tok.tokenize(res)
    out = {"versions": VERSIONS, "n": len(CAPTION_GROUPS), "metrics": {}, "groups": []}
    per = {}
    for name, scorer in [("bleu", Bleu(4)), ("meteor", Meteor()), ("rouge_l", Rouge()), ("cider_d", Cider())]:
        if name == "bleu":
            score, scores = scorer.compute_score(gts_t, res_t, verbose=0)
            for k in range(4):
                out["metrics"][f"bleu_{k + 1}"] = float(score[k])
                per[f"bleu_{k + 1}"] = [float(x) for x in scores[k]]
        else:
            score, scores = scorer.compute_score(gts_t, res_t)
            out["metrics"][name] = float(score)
            per[name] = [float(x) for x in scores]
    ms, mss = meteor_subset(gts_t, res_t, "exact stem", "1.0 0.6")
    out["metrics"]["meteor_exact_stem"] = ms
    per["meteor_exact_stem"] = mss
    for i, (c, refs) in enumerate(CAPTION_GROUPS):
        g = {"id": f"g{i:02d}", "candidate": c, "references": refs,
             "candidate_tok": res_t[i][0], "references_tok": gts_t[i]}
        g["scores"] = {k: v[i] for k, v in per.items()}
        out["groups"].append(g)
    # Meteor internals on the tokenised text: -norm normalisation and Snowball stems
    lines = sorted(set([g["candidate_tok"] for g in out["groups"]] + [r for g in out["groups"] for r in g["references_tok"]]))
    norm = meteor_java("norm", lines)
    words = sorted(set(w for n in norm for w in n.split()) | set(STEM_EXTRA))
    stems = meteor_java("stem", words)
    out["meteor_normalize"] = [{"text": t, "normalized": n} for t, n in zip(lines, norm)]
    out["snowball_english"] = [{"word": w, "stem": st} for w, st in zip(words, stems)]
    dump(os.path.join(OUT, "captions.json"), out)
    # the same groups as the JSON-lines files m2u-eval captions reads
    with open(os.path.join(OUT, "candidates.jsonl"), "w") as f:
        for g in out["groups"]:
            f.write(json.dumps({"id": g["id"], "caption": g["candidate"]}, ensure_ascii=False) + "\n")
    with open(os.path.join(OUT, "references.jsonl"), "w") as f:
        for g in out["groups"]:
            f.write(json.dumps({"id": g["id"], "references": g["references"]}, ensure_ascii=False) + "\n")


def tokenization():
    sents = list(TOKENIZE_ONLY)
    for c, refs in CAPTION_GROUPS:
        sents.append(c)
        sents.extend(refs)
    with open(os.path.join(REPO, "data", "demo", "music_text.jsonl")) as f:
        for line in f:
            o = json.loads(line)
            for k in ("caption", "question", "answer"):
                if k in o and o[k] not in sents:
                    sents.append(o[k])
    raw, filtered = ptb_raw(sents)
    dump(os.path.join(OUT, "tokenize.json"), {
        "versions": VERSIONS, "punctuations": PTB_PUNCT,
        "cases": [{"text": s, "ptb": r, "tokenized": t} for s, r, t in zip(sents, raw, filtered)]})


def frechet_scipy(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = numpy.cov(a, rowvar=False), numpy.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1.dot(s2))
    if not numpy.isfinite(covmean).all():
        off = numpy.eye(s1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((s1 + off).dot(s2 + off))
    if numpy.iscomplexobj(covmean):
        assert numpy.allclose(numpy.diagonal(covmean).imag, 0, atol=1e-3)
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff.dot(diff) + numpy.trace(s1) + numpy.trace(s2) - 2 * numpy.trace(covmean))


def distributions():
    rng = numpy.random.default_rng(20240611)
    fd = []
    for name, n1, n2, d, shift, scale in [("small", 40, 50, 8, 0.3, 1.5), ("medium", 300, 250, 32, 0.1, 0.8),
                                          ("wide", 200, 200, 64, 1.0, 1.0), ("same", 60, 60, 6, 0.0, 1.0)]:
        mix = rng.standard_normal((d, d)) / numpy.sqrt(d)
        a = rng.standard_normal((n1, d)) @ (numpy.eye(d) + 0.5 * mix)
        if name == "same":
            b = a.copy()
        else:
            b = scale * rng.standard_normal((n2, d)) @ (numpy.eye(d) + 0.3 * mix.T) + shift
        a = a.astype(numpy.float32)
        b = b.astype(numpy.float32)
        numpy.save(os.path.join(OUT, f"fd_{name}_a.npy"), a)
        numpy.save(os.path.join(OUT, f"fd_{name}_b.npy"), b)
        fd.append({"name": name, "a": f"fd_{name}_a.npy", "b": f"fd_{name}_b.npy",
                   "fd": frechet_scipy(a.astype(numpy.float64), b.astype(numpy.float64))})
    # KL: logits of C classes for P pairs; probabilities = softmax; KL(p_ref || p_gen) with the
    # audiocraft/M2UGen convention sum p_ref * (log p_ref - log(p_gen + 1e-6)), 0*log0 = 0.
    P, C = 12, 10
    ref_logits = (rng.standard_normal((P, C)) * 2).astype(numpy.float32)
    gen_logits = (ref_logits + rng.standard_normal((P, C))).astype(numpy.float32)
    ref_logits[0, 3] = -80.0  # a probability that underflows toward 0
    gen_logits[1, :] = ref_logits[1, :]  # identical pair
    numpy.save(os.path.join(OUT, "kl_ref_logits.npy"), ref_logits)
    numpy.save(os.path.join(OUT, "kl_gen_logits.npy"), gen_logits)

    def softmax(x):
        x = x.astype(numpy.float64)
        e = numpy.exp(x - x.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)
    pr, pg = softmax(ref_logits), softmax(gen_logits)
    eps = 1e-6
    with numpy.errstate(divide="ignore", invalid="ignore"):
        terms = numpy.where(pr > 0, pr * (numpy.log(pr) - numpy.log(pg + eps)), 0.0)
        terms_qp = numpy.where(pg > 0, pg * (numpy.log(pg) - numpy.log(pr + eps)), 0.0)
    kl_pq = terms.sum(1)
    kl_qp = terms_qp.sum(1)
    # cosine text-audio score on random embeddings
    ta = rng.standard_normal((7, 16)).astype(numpy.float32)
    au = (ta + 0.7 * rng.standard_normal((7, 16))).astype(numpy.float32)
    numpy.save(os.path.join(OUT, "cos_text.npy"), ta)
    numpy.save(os.path.join(OUT, "cos_audio.npy"), au)
    t64, a64 = ta.astype(numpy.float64), au.astype(numpy.float64)
    cos = (t64 * a64).sum(1) / (numpy.linalg.norm(t64, axis=1) * numpy.linalg.norm(a64, axis=1))
    dump(os.path.join(OUT, "distribution.json"), {
        "versions": VERSIONS, "fd": fd,
        "kl": {"ref": "kl_ref_logits.npy", "gen": "kl_gen_logits.npy", "eps": eps, "input": "logits",
               "per_pair": [float(x) for x in kl_pq], "mean": float(kl_pq.mean()),
               "per_pair_reverse": [float(x) for x in kl_qp], "mean_reverse": float(kl_qp.mean())},
        "cosine": {"text": "cos_text.npy", "audio": "cos_audio.npy", "per_pair": [float(x) for x in cos],
                   "mean": float(cos.mean())}})


# ---------------------------------------------------------------------------------------------
# Full METEOR (exact, stem, synonym, paraphrase) on >= 300 groups, and the data subset the C test
# reads (tests/fixtures/eval/meteor_data/).

WORDNET_DIR = "/usr/share/wordnet"  # Debian wordnet-base + wordnet-sense-index 1:3.0-37
EXC_FILES = ["adj.exc", "adv.exc", "noun.exc", "verb.exc"]

# synonym groups: a candidate and its references pick different members, so the synonym and
# paraphrase modules have work to do
SYN = {
    "slow": ["slow", "leisurely", "unhurried", "slow-paced", "sluggish"],
    "fast": ["fast", "quick", "rapid", "speedy", "swift", "up-tempo"],
    "sad": ["sad", "melancholy", "sorrowful", "mournful", "gloomy", "depressing", "unhappy"],
    "happy": ["happy", "cheerful", "joyful", "glad", "merry", "upbeat", "jolly"],
    "calm": ["calm", "peaceful", "tranquil", "serene", "relaxing", "soothing", "quiet"],
    "energetic": ["energetic", "lively", "vigorous", "dynamic", "spirited", "animated"],
    "dark": ["dark", "sinister", "ominous", "menacing", "grim"],
    "loud": ["loud", "noisy", "powerful", "thunderous", "intense"],
    "soft": ["soft", "gentle", "mellow", "delicate", "tender", "faint"],
    "song": ["song", "tune", "track", "piece", "composition", "number", "melody", "recording"],
    "plays": ["plays", "performs", "is playing", "is performing", "strums", "executes"],
    "sings": ["sings", "is singing", "chants", "croons", "vocalizes", "sang"],
    "features": ["features", "includes", "contains", "has", "uses", "incorporates"],
    "with": ["with", "accompanied by", "along with", "together with", "backed by", "alongside"],
    "singer": ["singer", "vocalist", "voice", "crooner"],
    "man": ["man", "male", "guy", "gentleman", "men"],
    "woman": ["woman", "female", "lady", "girl", "women"],
    "begins": ["begins", "starts", "opens", "commences", "kicks off"],
    "ends": ["ends", "finishes", "concludes", "stops", "fades out"],
    "background": ["in the background", "behind", "underneath", "in the back"],
    "many": ["many", "a lot of", "lots of", "plenty of", "numerous", "several"],
    "big": ["big", "large", "huge", "great", "massive"],
    "small": ["small", "little", "tiny", "minor"],
    "beautiful": ["beautiful", "lovely", "pretty", "gorgeous", "nice", "fine"],
    "old": ["old", "vintage", "retro", "ancient", "classic", "older"],
    "drums": ["drums", "percussion", "drumming", "drum kit", "beats"],
    "guitar": ["guitar", "acoustic guitar", "electric guitar", "guitars"],
    "piano": ["piano", "keyboard", "keys", "pianos"],
    "violin": ["violin", "fiddle", "strings", "violins"],
    "bass": ["bass", "bass guitar", "bassline", "bass line"],
    "synth": ["synth", "synthesizer", "synthesiser", "electronic keyboard"],
    "quality": ["low quality", "poor quality", "bad quality", "amateur recording", "lo-fi"],
    "sounds": ["sounds like", "resembles", "is similar to", "seems like", "feels like"],
    "children": ["children", "kids", "child", "youngsters"],
    "good": ["good", "better", "best", "great", "excellent"],
    "dance": ["dance", "dancing", "danced", "dances", "club"],
}
GENRES = ["rock", "jazz", "pop", "classical", "folk", "electronic", "hip hop", "country", "blues", "reggae",
          "metal", "ambient", "funk", "soul", "techno", "orchestral", "gospel", "latin", "punk", "disco"]
TEMPLATES = [
    "a {mood} {genre} {song} {with} {inst1} and {inst2}",
    "the {inst1} {plays} a {mood} {song} while the {inst2} {plays} {background}",
    "a {man} {sings} over a {tempo} {inst1} {song}",
    "this is a {tempo} {genre} {song} that {features} {many} {inst1}",
    "a {woman} {singer} {sings} a {mood} {song} {with} {inst1}",
    "the {song} {begins} with a {soft} {inst1} and {ends} with {loud} {inst2}",
    "{quality} of a {genre} {song} with {big} {inst1}",
    "it {sounds} a {mood} {genre} {song} for {children}",
    "a {beautiful} {old} {genre} {song} with {small} {inst1} parts",
    "{tempo} {genre} music to {dance} to, {good} for a party",
    "a {tempo} {inst1} solo, {mood} and {soft}, {with} {inst2} {background}",
    "{children} {sings} a {happy} {song} {with} {inst1} and clapping",
]
MOODS = ["sad", "happy", "calm", "energetic", "dark"]
INSTS = ["drums", "guitar", "piano", "violin", "bass", "synth"]


def gen_groups(n, seed=20261206):
    import random
    rng = random.Random(seed)
    groups = []
    for g in range(n):
        t = TEMPLATES[g % len(TEMPLATES)]
        slots = {"mood": rng.choice(MOODS), "genre": rng.choice(GENRES), "inst1": rng.choice(INSTS),
                 "inst2": rng.choice(INSTS), "tempo": rng.choice(["slow", "fast"])}
        keys = list(SYN)

        def render(template, variation):
            vals = {}
            for k in keys:
                opts = SYN[k]
                vals[k] = opts[0] if rng.random() > variation else rng.choice(opts)
            for slot in ("mood", "tempo", "inst1", "inst2"):
                opts = SYN[slots[slot]]
                vals[slot] = opts[0] if rng.random() > variation else rng.choice(opts)
            vals["genre"] = slots["genre"]
            return template.format(**vals)
        cand = render(t, 0.8)
        if rng.random() < 0.3:  # drop or swap a phrase now and then: partial matches, more chunks
            w = cand.split()
            i = rng.randrange(len(w))
            cand = " ".join(w[:i] + w[i + 1:]) if rng.random() < 0.5 else " ".join(w[i:] + w[:i])
        nref = rng.choice([2, 3, 4])
        refs = [render(TEMPLATES[(g + k * rng.randrange(1, 3)) % len(TEMPLATES)] if k == nref - 1 else t, 0.7)
                for k in range(nref)]
        cand = cand[0].upper() + cand[1:] + rng.choice([".", ".", "!", ""])
        refs = [r[0].upper() + r[1:] + "." for r in refs]
        groups.append((cand, refs))
    return groups


def wordnet_tables(wn):
    """english.synsets / english.exceptions as build_wordnet_files.py writes them from the WordNet
    dict folder wn, as lists of lines; restore=True moves Debian 1:3.0-37's renumbered offsets back
    (verb synsets in [613036, 2422967) by -18, adjective synsets from 1681478 by -1; see
    eval/metrics/meteor_data.c)."""
    exc = {}
    for f in EXC_FILES:
        with open(os.path.join(wn, f)) as fh:
            for line in fh:
                w = line.split()
                for b in w[1:]:
                    exc.setdefault(b, []).append(w[0])
    exc_lines = []
    for b in sorted(exc):
        exc_lines += [b, " ".join(exc[b])]
    with open(os.path.join(wn, "index.sense")) as fh:
        sense = [ln.split() for ln in fh if ln.strip()]
    keys = {t[0]: t[1] for t in sense}
    fix_v = keys.get("forget%2:31:02::") == "00613036"
    fix_a = keys.get("placed%5:00:00:arranged:00") == "01681478"

    def synsets(restore):
        out, cur, ss = [], "", ""
        for t in sense:
            word, pos, off = t[0].split("%")[0], t[0].split("%")[1][:1], int(t[1])
            if restore and fix_v and pos == "2" and 613036 <= off < 2422967:
                off -= 18
            if restore and fix_a and pos in "35" and off >= 1681478:
                off -= 1
            if word != cur:
                if cur:
                    out += [cur, ss.strip()]
                cur, ss = word, ""
            ss += "%08d " % off
        return out + [cur, ss.strip()]
    return synsets(False), synsets(True), exc_lines, (fix_v, fix_a)


def jar_resource(name):
    import zipfile
    with zipfile.ZipFile(os.path.join(PKG, "meteor", "meteor-1.5.jar")) as z:
        lines = z.read(name).decode().split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def morph_candidates(w):
    sufx = ["s", "ses", "xes", "zes", "ches", "shes", "men", "ies", "s", "ies", "es", "es", "ed", "ed", "ing",
            "ing", "er", "est", "er", "est"]
    addr = ["", "s", "x", "z", "ch", "sh", "man", "y", "", "y", "e", "", "e", "", "e", "", "", "", "e", "e"]
    return [w[:len(w) - len(s)] + a for s, a in zip(sufx, addr) if w.endswith(s)]


def meteor_full():
    import gzip
    if not os.path.exists(os.path.join(WORDNET_DIR, "index.sense")):
        sys.exit("make_eval_fixtures: needs WordNet 3.0 in /usr/share/wordnet (apt-get install wordnet-base "
                 "wordnet-sense-index)")
    # 1. the synonym tables rebuilt from Debian's WordNet against the jar's
    raw, restored, exc_lines, fixes = wordnet_tables(WORDNET_DIR)
    jar_syn, jar_exc = jar_resource("synonym/english.synsets"), jar_resource("synonym/english.exceptions")
    raw_diff = sum(1 for i in range(0, min(len(raw), len(jar_syn)), 2) if raw[i:i + 2] != jar_syn[i:i + 2])
    check = {"jar_synsets_entries": len(jar_syn) // 2, "jar_exceptions_entries": len(jar_exc) // 2,
             "rebuilt_synsets_entries": len(restored) // 2, "rebuilt_exceptions_entries": len(exc_lines) // 2,
             "debian_renumbering_detected": list(fixes),
             "synsets_equal_without_renumbering": raw == jar_syn,
             "synsets_entries_differing_without_renumbering": raw_diff,
             "synsets_equal": restored == jar_syn, "exceptions_equal": exc_lines == jar_exc}
    print("make_eval_fixtures: WordNet check", check)
    if not (check["synsets_equal"] and check["exceptions_equal"]):
        sys.exit("make_eval_fixtures: synonym tables rebuilt from /usr/share/wordnet differ from the jar's")
    # 2. the groups, tokenised as pycocoevalcap/eval.py does, scored by the jar
    groups = list(CAPTION_GROUPS) + gen_groups(260)
    gts = {i: [{"caption": r} for r in refs] for i, (_, refs) in enumerate(groups)}
    res = {i: [{"caption": c}] for i, (c, _) in enumerate(groups)}
    tok = PTBTokenizer()
    gts_t, res_t = tok.tokenize(gts), tok.tokenize(res)
    score, scores = Meteor().compute_score(gts_t, res_t)
    es, ess = meteor_subset(gts_t, res_t, "exact stem", "1.0 0.6")
    # 3. every word Meteor sees (its own normalisation of the lines it is given)
    lines = sorted(set([res_t[i][0].replace("|||", "").replace("  ", " ") for i in res_t] +
                       [r for i in gts_t for r in gts_t[i]]))
    words = sorted(set(w for n in meteor_java("norm", lines) for w in n.split()))
    vocab = set(words)
    syn_of = meteor_java("syn", words)
    # 4. the data subset.  Why it gives the same answers as the full data for these sentences:
    #  - synonyms: a word's synsets come from the lemma entries of the word itself, of its exception
    #    bases (exception lines whose inflected form is the word) and of the first morph() candidate
    #    that is a lemma; the subset keeps every index.sense line of every such lemma and of every
    #    morph() candidate that is a lemma at all (so the first one found is the same), and every
    #    exception line of every word; plus the two lines m2u uses to recognise Debian's numbering;
    #  - paraphrases: a match needs every word of an entry's phrase in one sentence and every word
    #    of its paraphrase in the other, so entries with a word outside the sentences' words never
    #    match; the kept entries stay in file order, which fixes the order Meteor proposes matches in
    #    (word ids are only compared for equality, so a smaller vocabulary changes nothing).
    exc_bases = {}
    sub = os.path.join(OUT, "meteor_data")
    os.makedirs(sub, exist_ok=True)
    for f in EXC_FILES:
        keep = []
        with open(os.path.join(WORDNET_DIR, f)) as fh:
            for line in fh:
                w = line.split()
                if w and w[0] in vocab:
                    keep.append(line)
                    exc_bases.setdefault(w[0], []).extend(w[1:])
        with open(os.path.join(sub, f), "w") as fh:
            fh.writelines(keep)
    need = set()
    for w in vocab:
        need.add(w)
        need.update(exc_bases.get(w, []))
        need.update(morph_candidates(w))
    fingerprints = {"forget%2:31:02::", "placed%5:00:00:arranged:00"}
    with open(os.path.join(WORDNET_DIR, "index.sense")) as fh:
        keep = [ln for ln in fh if ln.split() and (ln.split()[0].split("%")[0] in need or ln.split()[0] in fingerprints)]
    with open(os.path.join(sub, "index.sense"), "w") as fh:
        fh.writelines(keep)
    para = os.path.join(PKG, "meteor", "data", "paraphrase-en.gz")
    kept, total = [], 0
    with gzip.open(para, "rt", encoding="utf-8") as fh:
        while True:
            p = fh.readline()
            if not p:
                break
            ref, par = fh.readline(), fh.readline()
            total += 1
            if all(w in vocab for w in ref.split()) and all(w in vocab for w in par.split()):
                kept.append(p + ref + par)
    with open(os.path.join(sub, "paraphrase-en.gz"), "wb") as raw_f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw_f, mtime=0) as gz:
            gz.write("".join(kept).encode())
    print(f"make_eval_fixtures: subset {len(keep)} index.sense lines, {len(kept)}/{total} paraphrase entries")
    out = {"versions": VERSIONS, "n": len(groups), "wordnet_check": check,
           "metrics": {"meteor": float(score), "meteor_exact_stem": float(es)},
           "subset": {"index_sense_lines": len(keep), "paraphrase_entries": len(kept), "paraphrase_total": total},
           "synsets": [{"word": w, "synsets": [int(x) for x in s.split()]} for w, s in zip(words, syn_of)],
           "groups": [{"candidate": groups[i][0], "references": groups[i][1], "candidate_tok": res_t[i][0],
                       "references_tok": gts_t[i], "meteor": float(scores[i]), "meteor_exact_stem": float(ess[i])}
                      for i in range(len(groups))]}
    dump(os.path.join(OUT, "meteor.json"), out)


def main():
    os.makedirs(OUT, exist_ok=True)
    tokenization()
    captions()
    distributions()
    meteor_full()
    print("make_eval_fixtures: wrote", OUT)


if __name__ == "__main__":
    main()
