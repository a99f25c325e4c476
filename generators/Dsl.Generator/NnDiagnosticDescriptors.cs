using System;
using System.Collections.Generic;
using Microsoft.CodeAnalysis;
using Table = Dsl.Compiler.Diagnostics.DiagnosticDescriptors;

namespace Dsl.Generator
{
    /// <summary>
    /// Roslyn's descriptor of every NN id: one static field each, named as in the compiler's table
    /// (<see cref="Table"/>) and made from it once, when the generator loads. Id, title and severity are the
    /// table's, so the two cannot disagree; a test checks that every entry of the table has its field here and that
    /// each help link finds its row in docs/language.md. The compiler composes every message, so the format is "{0}".
    /// </summary>
    internal static class NnDiagnosticDescriptors
    {
        /// <summary>
        /// The language reference; each descriptor links to its row, <c>#nn1011</c> (an anchor in the table). The
        /// repository records no public address yet: this constant is the one place to change when it has one.
        /// </summary>
        public const string LanguageReference = "https://github.com/dsl-nn/dsl/blob/main/docs/language.md";

        /// <summary>NN0001 (error): Syntax error.</summary>
        public static readonly DiagnosticDescriptor SyntaxError = From(Table.SyntaxError);

        /// <summary>NN0002 (error): Unterminated block comment.</summary>
        public static readonly DiagnosticDescriptor UnterminatedComment = From(Table.UnterminatedComment);

        /// <summary>NN0003 (error): Number out of range.</summary>
        public static readonly DiagnosticDescriptor NumberOutOfRange = From(Table.NumberOutOfRange);

        /// <summary>NN0004 (error): No model declared.</summary>
        public static readonly DiagnosticDescriptor NoModel = From(Table.NoModel);

        /// <summary>NN0005 (error): Invalid character.</summary>
        public static readonly DiagnosticDescriptor InvalidCharacter = From(Table.InvalidCharacter);

        /// <summary>NN1001 (error): Unknown layer.</summary>
        public static readonly DiagnosticDescriptor UnknownLayer = From(Table.UnknownLayer);

        /// <summary>NN1002 (error): Unknown argument.</summary>
        public static readonly DiagnosticDescriptor UnknownArgument = From(Table.UnknownArgument);

        /// <summary>NN1003 (error): Repeated argument.</summary>
        public static readonly DiagnosticDescriptor RepeatedArgument = From(Table.RepeatedArgument);

        /// <summary>NN1004 (error): Missing argument.</summary>
        public static readonly DiagnosticDescriptor MissingArgument = From(Table.MissingArgument);

        /// <summary>NN1005 (error): Value of the wrong kind.</summary>
        public static readonly DiagnosticDescriptor WrongValueKind = From(Table.WrongValueKind);

        /// <summary>NN1006 (error): Value out of range.</summary>
        public static readonly DiagnosticDescriptor ValueOutOfRange = From(Table.ValueOutOfRange);

        /// <summary>NN1007 (error): Too many positional arguments.</summary>
        public static readonly DiagnosticDescriptor TooManyPositional = From(Table.TooManyPositional);

        /// <summary>NN1008 (error): Positional argument after a named one.</summary>
        public static readonly DiagnosticDescriptor PositionalAfterNamed = From(Table.PositionalAfterNamed);

        /// <summary>NN1010 (error): Channel count mismatch.</summary>
        public static readonly DiagnosticDescriptor ChannelMismatch = From(Table.ChannelMismatch);

        /// <summary>NN1011 (error): Feature count mismatch.</summary>
        public static readonly DiagnosticDescriptor FeatureMismatch = From(Table.FeatureMismatch);

        /// <summary>NN1012 (error): num_features mismatch.</summary>
        public static readonly DiagnosticDescriptor NumFeaturesMismatch = From(Table.NumFeaturesMismatch);

        /// <summary>NN1013 (error): Input of the wrong rank.</summary>
        public static readonly DiagnosticDescriptor WrongRank = From(Table.WrongRank);

        /// <summary>NN1014 (error): Spatial size reaches zero.</summary>
        public static readonly DiagnosticDescriptor SpatialSizeNotPositive = From(Table.SpatialSizeNotPositive);

        /// <summary>NN1015 (error): groups does not divide the channel counts.</summary>
        public static readonly DiagnosticDescriptor GroupsDoNotDivide = From(Table.GroupsDoNotDivide);

        /// <summary>NN1016 (error): Duplicate model name.</summary>
        public static readonly DiagnosticDescriptor DuplicateModel = From(Table.DuplicateModel);

        /// <summary>NN1017 (error): Duplicate layer name.</summary>
        public static readonly DiagnosticDescriptor DuplicateLayerName = From(Table.DuplicateLayerName);

        /// <summary>NN1018 (error): Invalid name.</summary>
        public static readonly DiagnosticDescriptor InvalidName = From(Table.InvalidName);

        /// <summary>NN1019 (error): Invalid input shape.</summary>
        public static readonly DiagnosticDescriptor InvalidInputShape = From(Table.InvalidInputShape);

        /// <summary>NN1020 (error): Pooling padding larger than half the kernel.</summary>
        public static readonly DiagnosticDescriptor PoolPaddingTooLarge = From(Table.PoolPaddingTooLarge);

        /// <summary>NN1021 (error): Frozen batch norm without running statistics.</summary>
        public static readonly DiagnosticDescriptor FrozenWithoutStatistics = From(Table.FrozenWithoutStatistics);

        /// <summary>NN1022 (error): Model too large.</summary>
        public static readonly DiagnosticDescriptor TooLarge = From(Table.TooLarge);

        /// <summary>NN1023 (error): num_groups does not divide the channels.</summary>
        public static readonly DiagnosticDescriptor NumGroupsDoNotDivide = From(Table.NumGroupsDoNotDivide);

        /// <summary>NN1024 (error): normalized_shape is not the input's last dimension.</summary>
        public static readonly DiagnosticDescriptor NormalizedShapeMismatch = From(Table.NormalizedShapeMismatch);

        /// <summary>NN1025 (error): Instance norm on features.</summary>
        public static readonly DiagnosticDescriptor InstanceNormOnFeatures = From(Table.InstanceNormOnFeatures);

        /// <summary>NN1026 (error): add of values with different shapes.</summary>
        public static readonly DiagnosticDescriptor AddShapeMismatch = From(Table.AddShapeMismatch);

        /// <summary>NN1027 (error): concat of values whose other dimensions differ.</summary>
        public static readonly DiagnosticDescriptor ConcatShapeMismatch = From(Table.ConcatShapeMismatch);

        /// <summary>NN1028 (error): Merge of fewer than two values.</summary>
        public static readonly DiagnosticDescriptor MergeArity = From(Table.MergeArity);

        /// <summary>NN1029 (error): Unknown block.</summary>
        public static readonly DiagnosticDescriptor UnknownBlock = From(Table.UnknownBlock);

        /// <summary>NN1030 (error): Recursive block.</summary>
        public static readonly DiagnosticDescriptor RecursiveBlock = From(Table.RecursiveBlock);

        /// <summary>NN1031 (error): Unknown value.</summary>
        public static readonly DiagnosticDescriptor UnknownValue = From(Table.UnknownValue);

        /// <summary>NN1032 (error): Value bound twice or misnamed.</summary>
        public static readonly DiagnosticDescriptor InvalidBinding = From(Table.InvalidBinding);

        /// <summary>NN1033 (error): Group without 'as'.</summary>
        public static readonly DiagnosticDescriptor GroupWithoutName = From(Table.GroupWithoutName);

        /// <summary>NN1034 (error): Invalid repetition.</summary>
        public static readonly DiagnosticDescriptor InvalidRepetition = From(Table.InvalidRepetition);

        /// <summary>NN1035 (error): Misplaced value or statement.</summary>
        public static readonly DiagnosticDescriptor MisplacedStatement = From(Table.MisplacedStatement);

        /// <summary>NN1036 (error): Invalid block declaration.</summary>
        public static readonly DiagnosticDescriptor InvalidBlock = From(Table.InvalidBlock);

        /// <summary>NN2001 (warning): Bias cancelled by batch norm.</summary>
        public static readonly DiagnosticDescriptor RedundantBias = From(Table.RedundantBias);

        /// <summary>NN2002 (warning): Dropout before batch norm.</summary>
        public static readonly DiagnosticDescriptor DropoutBeforeBatchNorm = From(Table.DropoutBeforeBatchNorm);

        /// <summary>NN2003 (warning): Momentum of 0.9 or more.</summary>
        public static readonly DiagnosticDescriptor KerasMomentum = From(Table.KerasMomentum);

        /// <summary>NN2004 (warning): Momentum of zero.</summary>
        public static readonly DiagnosticDescriptor ZeroMomentum = From(Table.ZeroMomentum);

        /// <summary>NN2005 (warning): Consecutive batch norms.</summary>
        public static readonly DiagnosticDescriptor ConsecutiveBatchNorm = From(Table.ConsecutiveBatchNorm);

        /// <summary>NN2006 (warning): Layer after softmax.</summary>
        public static readonly DiagnosticDescriptor LayerAfterSoftmax = From(Table.LayerAfterSoftmax);

        /// <summary>NN2007 (warning): Inference depends on the batch.</summary>
        public static readonly DiagnosticDescriptor BatchDependentInference = From(Table.BatchDependentInference);

        /// <summary>NN2008 (warning): Unused value.</summary>
        public static readonly DiagnosticDescriptor UnusedValue = From(Table.UnusedValue);

        /// <summary>NN9001 (error): Internal compiler error.</summary>
        public static readonly DiagnosticDescriptor InternalError = From(Table.InternalError);

        /// <summary>Every descriptor, in the table's order.</summary>
        public static readonly IReadOnlyList<DiagnosticDescriptor> All = new[]
        {
            SyntaxError, UnterminatedComment, NumberOutOfRange, NoModel, InvalidCharacter, UnknownLayer,
            UnknownArgument, RepeatedArgument, MissingArgument, WrongValueKind, ValueOutOfRange,
            TooManyPositional, PositionalAfterNamed, ChannelMismatch, FeatureMismatch, NumFeaturesMismatch,
            WrongRank, SpatialSizeNotPositive, GroupsDoNotDivide, DuplicateModel, DuplicateLayerName,
            InvalidName, InvalidInputShape, PoolPaddingTooLarge, FrozenWithoutStatistics, TooLarge,
            NumGroupsDoNotDivide, NormalizedShapeMismatch, InstanceNormOnFeatures,
            AddShapeMismatch, ConcatShapeMismatch, MergeArity, UnknownBlock, RecursiveBlock, UnknownValue,
            InvalidBinding, GroupWithoutName, InvalidRepetition, MisplacedStatement, InvalidBlock,
            RedundantBias, DropoutBeforeBatchNorm, KerasMomentum, ZeroMomentum, ConsecutiveBatchNorm,
            LayerAfterSoftmax, BatchDependentInference, UnusedValue, InternalError,
        };

        private static readonly Dictionary<string, DiagnosticDescriptor> ById = Index(All);

        /// <summary>The descriptor of an id the compiler reported (NN9001 for one it does not know, which would be our bug).</summary>
        public static DiagnosticDescriptor For(string id) => ById.TryGetValue(id, out var descriptor) ? descriptor : InternalError;

        /// <summary>The id's row in the language reference.</summary>
        public static string HelpLink(string id) => LanguageReference + "#" + id.ToLowerInvariant();

        private static DiagnosticDescriptor From(Dsl.Compiler.Diagnostics.DiagnosticDescriptor entry) => new(
            entry.Id,
            entry.Title,
            "{0}",
            Category(entry.Id),
            entry.Severity == Dsl.Compiler.Diagnostics.Severity.Error ? DiagnosticSeverity.Error : DiagnosticSeverity.Warning,
            isEnabledByDefault: true,
            helpLinkUri: HelpLink(entry.Id));

        /// <summary>NN0xxx syntax, NN1xxx meaning and shapes, NN2xxx usage warnings, NN9xxx the compiler itself.</summary>
        private static string Category(string id) => id.Length > 2 ? id[2] switch
        {
            '0' => "Dsl.Syntax",
            '1' => "Dsl.Semantics",
            '2' => "Dsl.Usage",
            _ => "Dsl.Internal",
        } : "Dsl.Internal";

        private static Dictionary<string, DiagnosticDescriptor> Index(IReadOnlyList<DiagnosticDescriptor> all)
        {
            var byId = new Dictionary<string, DiagnosticDescriptor>(StringComparer.Ordinal);
            foreach (var descriptor in all) byId.Add(descriptor.Id, descriptor);
            return byId;
        }
    }
}
