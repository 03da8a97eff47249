#!/usr/bin/perl
# test/doc_signatures.pl FILE...
#
# The function signatures the Markdown FILEs document: every ```sql block
# whose first line starts with "wg_" is a list of signatures such as
#	wg_revoke_peer(peer_id uuid)            RETURNS wgpeer.peer_public
# Prints one line per signature, "name<TAB>arg1,arg2,..." (the argument
# names in order), for test/docs_test.sh to compare with pg_proc.
use strict;
use warnings;

for my $file (@ARGV)
{
	open(my $in, '<', $file) or die "$file: $!\n";
	my ($lang, $text) = (undef, '');
	while (my $line = <$in>)
	{
		if (!defined $lang)
		{
			$lang = $1 if $line =~ /^\s*```(\w*)\s*$/;
			$text = '';
			next;
		}
		if ($line !~ /^\s*```\s*$/)
		{
			$text .= $line;
			next;
		}
		signatures($text) if $lang eq 'sql' && $text =~ /^\s*wg_\w+\(/;
		undef $lang;
	}
	close($in);
}

# Print the signatures in TEXT: each "wg_name(" at the start of a line up
# to its closing parenthesis.
sub signatures
{
	my ($text) = @_;
	while ($text =~ /^\s*(wg_\w+)\(/mg)
	{
		my $name = $1;
		my ($depth, $args, $pos) = (1, '', pos($text));
		while ($depth > 0 && $pos < length($text))
		{
			my $c = substr($text, $pos++, 1);
			$depth++ if $c eq '(';
			$depth-- if $c eq ')';
			$args .= $c if $depth > 0;
		}
		$args =~ s/--[^\n]*//g;	# SQL comments
		my @names;
		my $level = 0;
		my $arg = '';
		for my $c (split //, $args . ',')
		{
			$level++ if $c eq '(';
			$level-- if $c eq ')';
			if ($c eq ',' && $level == 0)
			{
				push @names, $1 if $arg =~ /^\s*(\w+)/;
				$arg = '';
			}
			else
			{
				$arg .= $c;
			}
		}
		print "$name\t", join(',', @names), "\n";
		pos($text) = $pos;
	}
}
