#!/usr/bin/perl
# test/doc_blocks.pl FILE OUTDIR [SECTION [VARIANT]]
#
# Writes the fenced code blocks of the Markdown FILE to OUTDIR, one file
# per block, numbered in order and named by their language:
# OUTDIR/001.sh, OUTDIR/002.sql, ...  With SECTION, only the blocks
# between "<!-- doc-test: SECTION begin -->" and "<!-- doc-test: SECTION
# end -->".  A block right after a line "<!-- doc-test: skip (reason) -->"
# is left out, and its reason printed on stderr, so every skipped block is
# visible in the test's output.  A block right after "<!-- doc-test: only
# NAME -->" belongs to variant NAME (the kernel or the userspace way of a
# step): it is left out unless VARIANT (default "userspace") is NAME.  Blocks without a language are left out
# (output samples, configuration files).  Indented blocks (inside a list
# item) are taken with their indentation removed.
use strict;
use warnings;

my ($file, $outdir, $section, $variant) = @ARGV;
die "usage: $0 FILE OUTDIR [SECTION [VARIANT]]\n" unless defined $outdir;
$section = undef if defined $section && $section eq '';
$variant //= 'userspace';
open(my $in, '<', $file) or die "$file: $!\n";
my $inside = defined $section ? 0 : 1;
my ($n, $skip, $lang, $indent, @body) = (0, undef, undef, '');
while (my $line = <$in>)
{
	if (defined $lang)
	{
		if ($line =~ /^\Q$indent\E```\s*$/)
		{
			if ($inside && $lang ne '')
			{
				if (defined $skip)
				{
					print STDERR "doc_blocks: skipped a $lang block of $file: $skip\n";
				}
				else
				{
					$n++;
					my $out = sprintf('%s/%03d.%s', $outdir, $n, $lang);
					open(my $fh, '>', $out) or die "$out: $!\n";
					print $fh @body;
					close($fh);
				}
			}
			undef $lang;
			undef $skip;
			@body = ();
		}
		else
		{
			$line =~ s/^\Q$indent\E//;
			push @body, $line;
		}
		next;
	}
	if (defined $section)
	{
		$inside = 1 if $line =~ /<!-- doc-test: \Q$section\E begin -->/;
		$inside = 0 if $line =~ /<!-- doc-test: \Q$section\E end -->/;
	}
	if ($line =~ /<!-- doc-test: skip \((.*)\) -->/)
	{
		$skip = $1;
		next;
	}
	if ($line =~ /<!-- doc-test: only (\S+) -->/)
	{
		$skip = "for the $1 variant" if $1 ne $variant;
		next;
	}
	if ($line =~ /^(\s*)```(\w*)\s*$/)
	{
		($indent, $lang) = ($1, $2);
		next;
	}
	undef $skip if $line =~ /\S/;
}
close($in);
print "$n\n";
